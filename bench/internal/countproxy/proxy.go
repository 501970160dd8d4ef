/*
Copyright 2026 The elector Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package countproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// quiet drops the net/http logs of cancelled watches and handshakes.
var quiet = log.New(io.Discard, "", 0)

// Proxy is a running counting proxy. Its methods are safe for concurrent use.
type Proxy struct {
	url    string
	caPEM  []byte
	srv    *http.Server
	ln     net.Listener
	served chan struct{}

	mu      sync.Mutex
	counts  map[Key]int64
	watches map[Key]int // open watches; Key.Verb is VerbWatch
}

// Start listens on 127.0.0.1 with a fresh self-signed certificate and
// forwards every request to upstream (the API server's base URL), trusting
// upstreamCA. Requests keep their Authorization header, so the API server
// authenticates the real caller. Responses are flushed at once, so watches
// stream as they would without the proxy.
func Start(upstream string, upstreamCA []byte) (*Proxy, error) {
	up, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("unable to parse the upstream URL %q: %w", upstream, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(upstreamCA) {
		return nil, errors.New("unable to use the upstream CA: no certificate in it")
	}
	cert, caPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("unable to listen for the counting proxy: %w", err)
	}
	p := &Proxy{
		url:     "https://" + ln.Addr().String(),
		caPEM:   caPEM,
		ln:      ln,
		served:  make(chan struct{}),
		counts:  map[Key]int64{},
		watches: map[Key]int{},
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			_, path := splitTag(pr.In.URL.Path)
			pr.Out.URL.Scheme = up.Scheme
			pr.Out.URL.Host = up.Host
			pr.Out.URL.Path = path
			pr.Out.URL.RawPath = ""
			pr.Out.Host = up.Host
		},
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
		},
		FlushInterval: -1,
		ErrorLog:      quiet,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A cancelled request (a watch the client closed) is normal.
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler:           p.count(rp),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          quiet,
	}
	go func() {
		defer close(p.served)
		_ = p.srv.ServeTLS(ln, "", "")
	}()
	return p, nil
}

// count records each request on arrival and tracks open watches.
func (p *Proxy) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := Classify(r.Method, r.URL)
		p.mu.Lock()
		p.counts[k]++
		if k.Verb == VerbWatch {
			p.watches[k]++
		}
		p.mu.Unlock()
		if k.Verb == VerbWatch {
			defer func() {
				p.mu.Lock()
				p.watches[k]--
				p.mu.Unlock()
			}()
		}
		next.ServeHTTP(w, r)
	})
}

// URL is the proxy's base URL, https://127.0.0.1:<port>.
func (p *Proxy) URL() string { return p.url }

// CA is the PEM certificate that clients must trust.
func (p *Proxy) CA() []byte { return p.caPEM }

// Config returns a copy of cfg (credentials) that reaches the API server
// through the proxy and is counted under tag.
func (p *Proxy) Config(cfg *rest.Config, tag string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = p.url + tagPrefix + tag
	c.TLSClientConfig = rest.TLSClientConfig{CAData: p.caPEM}
	return c
}

// Counts returns a copy of all counters so far.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := make(Counts, len(p.counts))
	for k, v := range p.counts {
		c[k] = v
	}
	return c
}

// OpenWatches returns the number of watches open now that match keep.
func (p *Proxy) OpenWatches(keep func(Key) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.watches {
		if keep(k) {
			n += v
		}
	}
	return n
}

// Close stops the proxy, cutting open watches.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if err != nil {
		err = p.srv.Close()
	}
	<-p.served
	return err
}

// Counts are request counters by Key.
type Counts map[Key]int64

// Sub returns c − base, counter by counter.
func (c Counts) Sub(base Counts) Counts {
	d := make(Counts, len(c))
	for k, v := range c {
		if v -= base[k]; v != 0 {
			d[k] = v
		}
	}
	return d
}

// ByVerb sums the counters that match keep, by verb.
func (c Counts) ByVerb(keep func(Key) bool) map[string]int64 {
	m := map[string]int64{}
	for k, v := range c {
		if keep(k) {
			m[k.Verb] += v
		}
	}
	return m
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("unable to generate the proxy key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "elector-bench-proxy"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("unable to create the proxy certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("unable to encode the proxy key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("unable to load the proxy certificate: %w", err)
	}
	return cert, certPEM, nil
}
