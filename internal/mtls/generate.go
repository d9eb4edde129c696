package mtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Generated names the files Generate writes into its directory.
var Generated = struct {
	CA, CAKey, ServerCert, ServerKey, ClientCert, ClientKey string
}{"ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"}

// Generate writes a new CA and a server and a client certificate signed by
// it into dir (ECDSA P-256, keys mode 0600). The server certificate names
// ServerName plus hosts (DNS names or IP addresses). It refuses to
// overwrite existing files, so a CA in use is never replaced by accident.
func Generate(dir string, hosts []string, validity time.Duration) error {
	for _, name := range []string{Generated.CA, Generated.CAKey, Generated.ServerCert, Generated.ServerKey, Generated.ClientCert, Generated.ClientKey} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("mtls: %s exists; remove it to generate a new set", filepath.Join(dir, name))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	now := time.Now()
	caKey, caCert, err := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "usersvc gRPC CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true,
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(validity)}, nil, nil)
	if err != nil {
		return err
	}
	server := leaf(ServerName, x509.ExtKeyUsageServerAuth, now, validity)
	server.DNSNames = []string{ServerName}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else if h != "" {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	client := leaf("usersvc gRPC client", x509.ExtKeyUsageClientAuth, now, validity)
	for _, w := range []struct {
		cert, key string
		tmpl      *x509.Certificate
	}{{Generated.ServerCert, Generated.ServerKey, server}, {Generated.ClientCert, Generated.ClientKey, client}} {
		key, cert, err := issue(w.tmpl, caCert, caKey)
		if err != nil {
			return err
		}
		if err := write(dir, w.cert, w.key, cert.Raw, key); err != nil {
			return err
		}
	}
	return write(dir, Generated.CA, Generated.CAKey, caCert.Raw, caKey)
}

func leaf(cn string, usage x509.ExtKeyUsage, now time.Time, validity time.Duration) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(validity)}
}

// issue makes a key and signs tmpl with parentKey (self-signed when parent
// is nil) and returns the key and the certificate.
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: serial: %w", err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: sign %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: parse %s: %w", tmpl.Subject.CommonName, err)
	}
	return key, cert, nil
}

func write(dir, certName, keyName string, raw []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("mtls: marshal key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: raw}), 0o644); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	return nil
}
