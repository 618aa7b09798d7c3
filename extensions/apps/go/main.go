// mtls-ref-go: a Go net/http server that terminates mutual TLS itself, the way mtls.fleet
// expects an app to (a reference app for docs/applications.md and the molecule scenarios).
//
//   - Files come from the environment mtls_app writes: MTLS_CERT_FILE, MTLS_KEY_FILE,
//     MTLS_CA_FILE and MTLS_CRL_FILE (optional).
//   - SIGHUP re-reads all four (certificate AND client CA pool AND CRLs) through
//     GetConfigForClient: new handshakes use the new files, open connections carry on, and a set
//     of files that fails to load is logged and the previous one kept.
//   - At each reload, open connections of clients the new CRLs revoke are closed: a keep-alive
//     connection would otherwise go on serving a client no new handshake accepts.
//   - Client certificates are checked against the CRLs of every CA in the chain, like nginx's
//     ssl_crl: a revoked certificate, a CA without a CRL, or an expired CRL is refused.
//   - SIGTERM stops accepting and lets in-flight requests finish (10 s at most).
//   - With systemd socket activation (LISTEN_FDS=1) it serves the inherited listener, so the
//     port stays open while the process restarts; otherwise it listens on LISTEN (:9443).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var current atomic.Pointer[tls.Config]

// conns holds the open connections, so a reload can close those of revoked clients.
var conns sync.Map

func main() {
	log.SetFlags(0)
	config, _, err := load()
	if err != nil {
		log.Fatalf("cannot start: %v", err)
	}
	current.Store(config)

	listener, err := listen(envOr("LISTEN", ":9443"))
	if err != nil {
		log.Fatalf("cannot listen: %v", err)
	}
	host, _ := os.Hostname()
	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			peer := r.TLS.PeerCertificates[0]
			fmt.Fprintf(w, "{\"client_identity\": %q, \"client_serial\": \"%X\", \"app\": \"go\", \"host\": %q}\n",
				peer.Subject.CommonName, peer.SerialNumber, host)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(os.Stderr, "", 0),
		ConnState: func(c net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				conns.Store(c, struct{}{})
			case http.StateClosed, http.StateHijacked:
				conns.Delete(c)
			}
		},
	}
	base := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return current.Load(), nil }}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		for sig := range signals {
			if sig == syscall.SIGHUP {
				if config, crls, err := load(); err != nil {
					log.Printf("reload failed, still serving the previous files: %v", err)
				} else {
					current.Store(config)
					closeRevoked(crls)
				}
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = server.Shutdown(ctx)
			cancel()
			close(done)
			return
		}
	}()
	if err := server.Serve(tls.NewListener(listener, base)); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-done
}

// closeRevoked closes the open connections of clients that crls revoke.
func closeRevoked(crls []*x509.RevocationList) {
	if crls == nil {
		return
	}
	conns.Range(func(key, _ any) bool {
		if conn, ok := key.(*tls.Conn); ok {
			state := conn.ConnectionState()
			if state.HandshakeComplete && checkRevocation(state.VerifiedChains, crls, time.Now()) != nil {
				log.Printf("closing the connection of revoked client %X", state.PeerCertificates[0].SerialNumber)
				_ = conn.Close()
			}
		}
		return true
	})
}

// load reads the files the environment names into a server configuration, and its CRLs.
func load() (*tls.Config, []*x509.RevocationList, error) {
	pair, err := tls.LoadX509KeyPair(os.Getenv("MTLS_CERT_FILE"), os.Getenv("MTLS_KEY_FILE"))
	if err != nil {
		return nil, nil, err
	}
	bundle, err := os.ReadFile(os.Getenv("MTLS_CA_FILE"))
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return nil, nil, fmt.Errorf("%s holds no certificate", os.Getenv("MTLS_CA_FILE"))
	}
	var crls []*x509.RevocationList
	if path := os.Getenv("MTLS_CRL_FILE"); path != "" {
		if crls, err = loadCRLs(path); err != nil {
			return nil, nil, err
		}
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	log.Printf("serving certificate serial %X, %d CRL(s)", leaf.SerialNumber, len(crls))
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		VerifyPeerCertificate: func(_ [][]byte, chains [][]*x509.Certificate) error {
			if crls == nil {
				return nil
			}
			return checkRevocation(chains, crls, time.Now())
		},
	}, crls, nil
}

func loadCRLs(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crls []*x509.RevocationList
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		crls = append(crls, crl)
	}
	if len(crls) == 0 {
		return nil, fmt.Errorf("%s holds no CRL", path)
	}
	return crls, nil
}

// checkRevocation refuses a chain in which any certificate below the root is revoked, or whose
// issuer has no current CRL (what OpenSSL's CRL check of the whole chain does for nginx).
func checkRevocation(chains [][]*x509.Certificate, crls []*x509.RevocationList, now time.Time) error {
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			crl := crlOf(issuer, crls)
			switch {
			case crl == nil:
				return fmt.Errorf("no CRL of %s", issuer.Subject)
			case now.After(crl.NextUpdate):
				return fmt.Errorf("the CRL of %s expired at %s", issuer.Subject, crl.NextUpdate)
			}
			for _, revoked := range crl.RevokedCertificates {
				if revoked.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return fmt.Errorf("certificate %X (%s) is revoked", cert.SerialNumber, cert.Subject)
				}
			}
		}
	}
	return nil
}

func crlOf(issuer *x509.Certificate, crls []*x509.RevocationList) *x509.RevocationList {
	for _, crl := range crls {
		if string(crl.RawIssuer) == string(issuer.RawSubject) && crl.CheckSignatureFrom(issuer) == nil {
			return crl
		}
	}
	return nil
}

// listen takes the socket systemd passes (socket activation) or opens its own.
func listen(address string) (net.Listener, error) {
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && os.Getenv("LISTEN_FDS") == "1" {
		log.Printf("serving the socket systemd passed")
		return net.FileListener(os.NewFile(3, "systemd-socket"))
	}
	log.Printf("listening on %s", address)
	return net.Listen("tcp", address)
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
