// mtls-ref-go-client: a Go http.Client that picks up a rotated identity without a restart (a
// reference client for docs/applications.md, tested in tests/unit/test_reference_apps.py).
//
//	mtls-ref-go-client URL SECONDS
//
// Before each request it compares the identity and bundle files (MTLS_CERT_FILE, MTLS_KEY_FILE,
// MTLS_CA_FILE) with what it loaded; when they changed it builds a new client whose
// GetClientCertificate presents the new pair, and closes the old one's idle connections so the
// next request makes a new handshake. Files that do not load yet (half-written during an
// install) leave the current client in use. Prints {"sent", "failed", "client_serials"}: the
// serials the server reported seeing, in order.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

type client struct {
	stamp string
	http  *http.Client
}

func (c *client) current() (*http.Client, error) {
	stamp, err := stampOf(os.Getenv("MTLS_CERT_FILE"), os.Getenv("MTLS_KEY_FILE"), os.Getenv("MTLS_CA_FILE"))
	if err != nil || stamp == c.stamp {
		return c.http, err
	}
	pair, err := tls.LoadX509KeyPair(os.Getenv("MTLS_CERT_FILE"), os.Getenv("MTLS_KEY_FILE"))
	if err != nil {
		return c.http, err
	}
	bundle, err := os.ReadFile(os.Getenv("MTLS_CA_FILE"))
	if err != nil {
		return c.http, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return c.http, fmt.Errorf("%s holds no certificate", os.Getenv("MTLS_CA_FILE"))
	}
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	c.stamp = stamp
	c.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:              pool,
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
	}}}
	return c.http, nil
}

func stampOf(paths ...string) (string, error) {
	stamp := ""
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%s:%d:%d;", path, info.ModTime().UnixNano(), info.Size())
	}
	return stamp, nil
}

func main() {
	seconds, _ := strconv.ParseFloat(os.Args[2], 64)
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	result := struct {
		Sent          int      `json:"sent"`
		Failed        int      `json:"failed"`
		ClientSerials []string `json:"client_serials"`
	}{ClientSerials: []string{}}
	c := &client{}
	for time.Now().Before(deadline) {
		result.Sent++
		var reply struct {
			ClientSerial string `json:"client_serial"`
		}
		httpClient, err := c.current()
		if httpClient == nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		response, err := httpClient.Get(os.Args[1])
		if err == nil {
			body, _ := io.ReadAll(response.Body)
			response.Body.Close()
			err = json.Unmarshal(body, &reply)
			if response.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %d", response.StatusCode)
			}
		}
		if err != nil {
			result.Failed++
			fmt.Fprintln(os.Stderr, err)
		} else if n := len(result.ClientSerials); n == 0 || result.ClientSerials[n-1] != reply.ClientSerial {
			result.ClientSerials = append(result.ClientSerials, reply.ClientSerial)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = json.NewEncoder(os.Stdout).Encode(result)
}
