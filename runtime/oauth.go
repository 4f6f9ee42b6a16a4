package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauthSource gets and caches the bearer token of an
// oauth2_client_credentials auth: one token serves every request of the
// integration, and a new one is fetched shortly before it expires
// (oauth2.Token.Valid). A fetch is bound to the context of the attempt
// that needs it: a token endpoint that hangs holds an attempt no longer
// than its context allows (and a shutdown no longer than its grace).
type oauthSource struct {
	cfg clientcredentials.Config

	// fetch is held by the one fetch under way; others wait for it, or
	// for their context to end.
	fetch chan struct{}

	mu     sync.Mutex
	tok    *oauth2.Token
	issued []string // tokens handed out, scrubbed from vendor messages
}

func newOAuthSource(cfg clientcredentials.Config) *oauthSource {
	return &oauthSource{cfg: cfg, fetch: make(chan struct{}, 1)}
}

func (o *oauthSource) cached() *oauth2.Token {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tok.Valid() {
		return o.tok
	}
	return nil
}

func (o *oauthSource) token(ctx context.Context, client *http.Client) (*oauth2.Token, error) {
	if tok := o.cached(); tok != nil {
		return tok, nil
	}
	select {
	case o.fetch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-o.fetch }()
	if tok := o.cached(); tok != nil { // fetched while we waited
		return tok, nil
	}
	// The token is fetched with the sender's client (its timeouts and its
	// address checks), within the attempt's context.
	tok, err := o.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.tok = tok
	if len(o.issued) == 0 || o.issued[len(o.issued)-1] != tok.AccessToken {
		o.issued = append(o.issued, tok.AccessToken)
		if len(o.issued) > 4 {
			o.issued = o.issued[1:]
		}
	}
	o.mu.Unlock()
	return tok, nil
}

// forget drops the cached token tok (a vendor refused it: revoked, or
// expired without saying when), so that the next attempt fetches a new
// one. A newer token is kept.
func (o *oauthSource) forget(tok string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tok != nil && o.tok.AccessToken == tok {
		o.tok = nil
	}
}

// ForgetToken tells the integration that the vendor refused req's fetched
// token (a 401): the next attempt fetches a new one. A token sent without
// expires_in would otherwise be used until the process ends.
func (in *Integration) ForgetToken(req *Request) {
	if req == nil || req.spec == nil {
		return
	}
	rp := in.requests[req.spec]
	if rp == nil || rp.oauth == nil {
		return
	}
	if h, ok := req.Header("Authorization"); ok {
		rp.oauth.forget(strings.TrimPrefix(h, "Bearer "))
	}
}

// AuthError is a failure to get a request's credentials before sending
// it: the token endpoint refused the client (Permanent), or could not be
// reached or answered an error that may pass.
type AuthError struct {
	Status    int // the token endpoint's HTTP status, 0 when none
	Permanent bool
	Message   string // redacted
	err       error  // the cause, for Is only (its text may show a secret)
}

func (e *AuthError) Error() string { return e.Message }

// Is answers for the cause (context.DeadlineExceeded, context.Canceled).
func (e *AuthError) Is(target error) bool { return e.err != nil && errors.Is(e.err, target) }

// Authorize adds the credentials that are fetched at send time to req: a
// bearer token from the token endpoint of an oauth2_client_credentials
// auth, got once and reused until shortly before it expires. Other
// requests are left as they are. A sender calls it before every attempt
// with its HTTP client; the error is an *AuthError. It is
// AuthorizeContext with context.Background(): a token endpoint that hangs
// holds it as long as the client's own timeout allows.
func (in *Integration) Authorize(req *Request, client *http.Client) error {
	return in.AuthorizeContext(context.Background(), req, client)
}

// AuthorizeContext is Authorize within ctx: a token fetch ends when ctx
// does (an attempt's deadline, a shutdown), and the error then answers
// errors.Is for ctx's error.
func (in *Integration) AuthorizeContext(ctx context.Context, req *Request, client *http.Client) error {
	if req == nil || req.spec == nil {
		return nil
	}
	rp := in.requests[req.spec]
	if rp == nil || rp.oauth == nil {
		return nil
	}
	tok, err := rp.oauth.token(ctx, client)
	if err != nil {
		ae := &AuthError{err: err}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			ae.Status = re.Response.StatusCode
			ae.Permanent = ae.Status == 400 || ae.Status == 401 || ae.Status == 403
		}
		switch {
		case ae.Permanent:
			ae.Message = fmt.Sprintf("the token endpoint refused the client credentials (%d): check client_id and client_secret", ae.Status)
		case re != nil && re.Response != nil:
			// The endpoint's own text (up to 1 MiB, any bytes) is read as
			// a vendor's answer is: scrubbed, then cut to one printable
			// line, so that it can neither flood nor forge log lines.
			body := []byte(in.scrubTokens(string(re.Body)))
			ae.Message = in.Redact(fmt.Sprintf("the token endpoint did not give a token (%d): %s", ae.Status, vendorMessage(nil, ae.Status, body, in.red)))
		default:
			ae.Message = in.Redact("the token endpoint did not give a token: " + clip(in.Redact(err.Error())))
		}
		return ae
	}
	setHeader(req, "Authorization", "Bearer "+tok.AccessToken)
	return nil
}

// authSecrets are the keys auth renders that no header carries, scrubbed
// as secrets are (auth is always secret, whatever the type of the config
// keys it reads, and with literal text around them): each OAuth client
// secret, also as golang.org/x/oauth2 sends it (it query-escapes the
// secret before it base64-encodes it into Basic credentials, so a token
// endpoint that echoes the Authorization header shows base64 of the
// escaped secret: "a/b" is sent as "a%2Fb"), and each signing key.
func (in *Integration) authSecrets() []string {
	var out []string
	for _, rp := range in.requests {
		if rp.sig != nil && len(rp.sigKey) > 0 {
			out = append(out, string(rp.sigKey))
		}
		if rp.oauth == nil {
			continue
		}
		out = append(out, rp.oauth.cfg.ClientSecret)
		if esc := url.QueryEscape(rp.oauth.cfg.ClientSecret); esc != rp.oauth.cfg.ClientSecret {
			out = append(out, esc)
		}
	}
	return out
}

// scrubTokens removes the access tokens handed out from s (a vendor may
// echo the Authorization header in an error).
func (in *Integration) scrubTokens(s string) string {
	for _, rp := range in.requests {
		if rp.oauth == nil {
			continue
		}
		rp.oauth.mu.Lock()
		for _, t := range rp.oauth.issued {
			// As the redaction: shorter text would mask unrelated text
			// (a token endpoint answering "e" garbled every message).
			if len(t) >= minSecretLen {
				s = strings.ReplaceAll(s, t, "***")
			}
		}
		rp.oauth.mu.Unlock()
	}
	return s
}
