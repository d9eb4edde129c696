// Package mtls builds the TLS configurations of the gRPC hop between the API
// (and any other client) and the user service: mutual TLS 1.3 where each side
// proves itself with a certificate from one private CA, and generates a
// development CA with its certificates (`usersvc certs generate`).
package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerName is the name the service's certificate is issued for and that
// clients verify. Instances are dialled by the IP address the registry
// lists, which changes with every pod; one stable service name in the
// certificate is what makes verification possible.
const ServerName = "user.service"

// Files names the PEM files of one side.
type Files struct {
	Cert, Key, CA string
}

// Enabled reports whether any file is set; then all three must be.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

func (f Files) load() (tls.Certificate, *x509.CertPool, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return tls.Certificate{}, nil, errors.New("mtls: certificate, key and CA are all required")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("mtls: load key pair %s, %s: %w", f.Cert, f.Key, err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("mtls: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("mtls: %s holds no PEM certificate", f.CA)
	}
	return cert, pool, nil
}

// ServerConfig is the service's side: TLS 1.3 only, and a client must
// present a certificate the CA signed.
func ServerConfig(f Files) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientConfig is a client's side: TLS 1.3 only, its own certificate, and
// the service verified against the CA under ServerName.
func ClientConfig(f Files) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   ServerName,
	}, nil
}
