package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/internal/kafka"
)

// kafkaPasswordEnv holds the SASL password when no file is given. The
// password is never a flag value: flags show in the process list and in
// shell history.
const kafkaPasswordEnv = "BLUEPRINT_KAFKA_SASL_PASSWORD"

const (
	kafkaPartitionsDefault = 3
	kafkaPartitionsMax     = 10_000
)

// kafkaFlags are serve's flags for managed Kafka (MSK, Confluent Cloud):
// TLS, SASL, and the partitions of the topics serve creates.
type kafkaFlags struct {
	tls                                bool
	tlsCA, tlsCert, tlsKey, serverName string
	mechanism, user, passwordFile      string
	partitions                         int
	password                           string // a trap: refused, never read
}

// kafkaFlagNames are the flags of Kafka mode besides --kafka-brokers and
// --role.
var kafkaFlagNames = []string{"kafka-partitions", "kafka-tls", "kafka-tls-ca", "kafka-tls-cert", "kafka-tls-key", "kafka-tls-server-name",
	"kafka-sasl-mechanism", "kafka-sasl-user", "kafka-sasl-password-file"}

func (f *kafkaFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.partitions, "kafka-partitions", kafkaPartitionsDefault, fmt.Sprintf("partitions `N` of the topics serve creates (1 to %d; existing topics are left alone)", kafkaPartitionsMax))
	fl.BoolVar(&f.tls, "kafka-tls", false, "connect to the brokers with TLS, trusting the system's roots")
	fl.StringVar(&f.tlsCA, "kafka-tls-ca", "", "trust only the CA certificates of PEM `FILE` for the brokers (implies --kafka-tls)")
	fl.StringVar(&f.tlsCert, "kafka-tls-cert", "", "client certificate PEM `FILE` for mutual TLS (with --kafka-tls-key; implies --kafka-tls)")
	fl.StringVar(&f.tlsKey, "kafka-tls-key", "", "client private key PEM `FILE` for mutual TLS (with --kafka-tls-cert)")
	fl.StringVar(&f.serverName, "kafka-tls-server-name", "", "check the brokers' certificates against `NAME` instead of the host dialled (implies --kafka-tls)")
	fl.StringVar(&f.mechanism, "kafka-sasl-mechanism", "", "SASL `MECHANISM`: plain, scram-sha-256 or scram-sha-512 (with --kafka-sasl-user)")
	fl.StringVar(&f.user, "kafka-sasl-user", "", "SASL user `NAME`")
	fl.StringVar(&f.passwordFile, "kafka-sasl-password-file", "", "read the SASL password from `FILE` (else from $"+kafkaPasswordEnv+"; one trailing newline is ignored)")
	fl.StringVar(&f.password, "kafka-sasl-password", "", "refused: the password is never a flag value")
	_ = fl.MarkHidden("kafka-sasl-password")
}

// security checks the flags' combinations and builds the clients'
// security and the partition count. kafkaMode says --kafka-brokers was
// given. Warnings are for the log. Errors are usage errors (exit 2) and
// never hold the password.
func (f *kafkaFlags) security(cmd *cobra.Command, kafkaMode bool, getenv func(string) string) (sec *kafka.Security, partitions int32, warnings []string, err error) {
	fl := cmd.Flags()
	if fl.Changed("kafka-sasl-password") {
		return nil, 0, nil, usageErr("--kafka-sasl-password is refused: the password is never a flag value (flags show in the process list and shell history); put it in a file for --kafka-sasl-password-file, or in the environment variable %s", kafkaPasswordEnv)
	}
	if !kafkaMode {
		for _, name := range kafkaFlagNames {
			if fl.Changed(name) {
				return nil, 0, nil, usageErr("--%s needs --kafka-brokers (it is of Kafka mode)", name)
			}
		}
		return nil, 0, nil, nil
	}
	if err := intIn("kafka-partitions", f.partitions, 1, kafkaPartitionsMax); err != nil {
		return nil, 0, nil, err
	}
	sec = &kafka.Security{}
	files := kafka.TLSFiles{CA: f.tlsCA, Cert: f.tlsCert, Key: f.tlsKey, ServerName: f.serverName}
	implied := files != kafka.TLSFiles{}
	switch {
	case fl.Changed("kafka-tls") && !f.tls && implied:
		return nil, 0, nil, usageErr("--kafka-tls=false with --kafka-tls-ca, --kafka-tls-cert or --kafka-tls-server-name: these turn TLS on")
	case f.tlsCert != "" && f.tlsKey == "":
		return nil, 0, nil, usageErr("--kafka-tls-cert needs --kafka-tls-key (mutual TLS takes the certificate and its key)")
	case f.tlsKey != "" && f.tlsCert == "":
		return nil, 0, nil, usageErr("--kafka-tls-key needs --kafka-tls-cert (mutual TLS takes the certificate and its key)")
	}
	if f.tls || implied {
		if sec.TLS, err = files.Config(); err != nil {
			return nil, 0, nil, usageErr("%s", strings.TrimPrefix(err.Error(), "kafka: "))
		}
	}
	switch {
	case f.mechanism == "" && f.user != "":
		return nil, 0, nil, usageErr("--kafka-sasl-user needs --kafka-sasl-mechanism (plain, scram-sha-256 or scram-sha-512)")
	case f.mechanism == "" && f.passwordFile != "":
		return nil, 0, nil, usageErr("--kafka-sasl-password-file needs --kafka-sasl-mechanism and --kafka-sasl-user")
	case f.mechanism == "":
		return sec, int32(f.partitions), nil, nil
	}
	mech := strings.ToUpper(f.mechanism)
	if mech != kafka.SASLPlain && mech != kafka.SASLScramSHA256 && mech != kafka.SASLScramSHA512 {
		return nil, 0, nil, usageErr("--kafka-sasl-mechanism %q: want plain, scram-sha-256 or scram-sha-512", f.mechanism)
	}
	if f.user == "" {
		return nil, 0, nil, usageErr("--kafka-sasl-mechanism needs --kafka-sasl-user")
	}
	env := getenv(kafkaPasswordEnv)
	var pass string
	switch {
	case f.passwordFile != "" && env != "":
		return nil, 0, nil, usageErr("the SASL password is given twice, by --kafka-sasl-password-file and by %s: keep one", kafkaPasswordEnv)
	case f.passwordFile != "":
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, 0, nil, usageErr("--kafka-sasl-password-file: %v", err)
		}
		pass = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pass == "" {
			return nil, 0, nil, usageErr("--kafka-sasl-password-file %s is empty", f.passwordFile)
		}
		if st, err := os.Stat(f.passwordFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("--kafka-sasl-password-file %s can be read by other users (mode %04o): chmod 600 it", f.passwordFile, st.Mode().Perm()))
		}
	case env != "":
		pass = env
	default:
		return nil, 0, nil, usageErr("--kafka-sasl-mechanism needs a password: --kafka-sasl-password-file FILE, or the environment variable %s", kafkaPasswordEnv)
	}
	if strings.ContainsAny(pass, "\x00\n") {
		return nil, 0, nil, usageErr("the SASL password holds a line break or a NUL byte (a password file holds the password and at most one trailing newline)")
	}
	if sec.SASL, err = kafka.NewSASL(mech, f.user, pass); err != nil {
		return nil, 0, nil, usageErr("%s", strings.TrimPrefix(err.Error(), "kafka: "))
	}
	if mech == kafka.SASLPlain && sec.TLS == nil {
		warnings = append(warnings, "SASL PLAIN without TLS sends the password to the brokers in clear text: add --kafka-tls unless the network is trusted")
	}
	return sec, int32(f.partitions), warnings, nil
}
