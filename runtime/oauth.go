package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauthSource gets and caches the bearer token of an
// oauth2_client_credentials auth: golang.org/x/oauth2 refreshes it
// shortly before it expires, and one token serves every request of the
// integration.
type oauthSource struct {
	cfg clientcredentials.Config

	mu     sync.Mutex
	ts     oauth2.TokenSource
	issued []string // tokens handed out, scrubbed from vendor messages
}

func (o *oauthSource) token(client *http.Client) (*oauth2.Token, error) {
	o.mu.Lock()
	if o.ts == nil {
		// The token is fetched with the sender's client (its timeouts and
		// its address checks); not bound to one attempt's context.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
		o.ts = o.cfg.TokenSource(ctx)
	}
	ts := o.ts
	o.mu.Unlock()
	tok, err := ts.Token()
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	if len(o.issued) == 0 || o.issued[len(o.issued)-1] != tok.AccessToken {
		o.issued = append(o.issued, tok.AccessToken)
		if len(o.issued) > 4 {
			o.issued = o.issued[1:]
		}
	}
	o.mu.Unlock()
	return tok, nil
}

// AuthError is a failure to get a request's credentials before sending
// it: the token endpoint refused the client (Permanent), or could not be
// reached or answered an error that may pass.
type AuthError struct {
	Status    int // the token endpoint's HTTP status, 0 when none
	Permanent bool
	Message   string // redacted
}

func (e *AuthError) Error() string { return e.Message }

// Authorize adds the credentials that are fetched at send time to req: a
// bearer token from the token endpoint of an oauth2_client_credentials
// auth, got once and reused until shortly before it expires. Other
// requests are left as they are. A sender calls it before every attempt
// with its HTTP client; the error is an *AuthError.
func (in *Integration) Authorize(req *Request, client *http.Client) error {
	if req == nil || req.spec == nil {
		return nil
	}
	rp := in.requests[req.spec]
	if rp == nil || rp.oauth == nil {
		return nil
	}
	tok, err := rp.oauth.token(client)
	if err != nil {
		ae := &AuthError{}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			ae.Status = re.Response.StatusCode
			ae.Permanent = ae.Status == 400 || ae.Status == 401 || ae.Status == 403
		}
		if ae.Permanent {
			ae.Message = fmt.Sprintf("the token endpoint refused the client credentials (%d): check client_id and client_secret", ae.Status)
		} else {
			ae.Message = in.Redact("the token endpoint did not give a token: " + err.Error())
		}
		return ae
	}
	setHeader(req, "Authorization", "Bearer "+tok.AccessToken)
	return nil
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
			if t != "" {
				s = strings.ReplaceAll(s, t, "***")
			}
		}
		rp.oauth.mu.Unlock()
	}
	return s
}
