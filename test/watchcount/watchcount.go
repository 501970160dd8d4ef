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

// Package watchcount is a counting reverse proxy for tests and
// benchmarks: it sits between clients and kube-apiserver and counts, per
// client (a tag in the URL path) and per resource, the LIST and WATCH
// requests, the bytes of their responses and the events of every watch
// stream (JSON: one line per event; protobuf: one length-prefixed frame
// per event). It also keeps the shardSelector of each request, so a test
// can see what a client asked the API server for.
//
// It listens on loopback with a fresh self-signed certificate (kubeconfig
// loading drops bearer tokens for plain-HTTP servers) and forwards to the
// API server over TLS, passing the Authorization header through, so the
// API server authenticates the real caller. Responses are flushed at once, so
// watches stream as they would without the proxy.
package watchcount

import (
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// tagPrefix starts every proxied path: /t/<tag>/api/v1/....
const tagPrefix = "/t/"

// quiet drops the net/http logs of cancelled watches.
var quiet = log.New(io.Discard, "", 0)

// Key names a counter: a client's tag and a resource ("configmaps",
// "leases"...).
type Key struct {
	Tag      string
	Resource string
}

// Count is what the proxy saw of one Key.
type Count struct {
	Lists       int64 // LIST requests
	ListBytes   int64 // bytes of LIST responses
	Watches     int64 // WATCH requests
	WatchEvents int64 // events streamed by watches (bookmarks included)
	WatchBytes  int64 // bytes streamed by watches
	// Open is the number of watches open now.
	Open int64
	// Stream is the Content-Type (and Content-Encoding, if any) of the
	// last watch response.
	Stream string
	// Selectors are the distinct shardSelector parameters of the LIST and
	// WATCH requests, in order of first use ("" for none).
	Selectors []string
}

// Sub returns c − base for the counters; Selectors are c's.
func (c Count) Sub(base Count) Count {
	return Count{
		Lists: c.Lists - base.Lists, ListBytes: c.ListBytes - base.ListBytes,
		Watches: c.Watches - base.Watches, WatchEvents: c.WatchEvents - base.WatchEvents,
		WatchBytes: c.WatchBytes - base.WatchBytes, Open: c.Open, Stream: c.Stream, Selectors: c.Selectors,
	}
}

// Proxy is a running counting proxy. Its methods are safe for concurrent
// use.
type Proxy struct {
	url    string
	caPEM  []byte
	srv    *http.Server
	served chan struct{}

	mu     sync.Mutex
	counts map[Key]*Count
}

// Start listens on 127.0.0.1 and forwards every request to upstream (the
// API server's base URL, https://...), trusting upstreamCA (PEM).
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
	p := &Proxy{url: "https://" + ln.Addr().String(), caPEM: caPEM, served: make(chan struct{}), counts: map[Key]*Count{}}
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
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
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

// Config returns a copy of cfg's credentials that reaches the API server
// through the proxy and is counted under tag. Client certificates do not
// pass a proxy: cfg must authenticate with a bearer token.
func (p *Proxy) Config(cfg *rest.Config, tag string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = p.url + tagPrefix + tag
	c.TLSClientConfig = rest.TLSClientConfig{CAData: p.caPEM}
	return c
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("unable to generate the proxy key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "elector-watchcount"},
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
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("unable to load the proxy certificate: %w", err)
	}
	return cert, certPEM, nil
}

// Get returns the counters of key so far.
func (p *Proxy) Get(k Key) Count {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.counts[k]
	if !ok {
		return Count{}
	}
	out := *c
	out.Selectors = append([]string(nil), c.Selectors...)
	return out
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

func (p *Proxy) add(k Key, f func(c *Count)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.counts[k]
	if !ok {
		c = &Count{}
		p.counts[k] = c
	}
	f(c)
}

// count classifies each request and wraps the response of LISTs and
// WATCHes in a counter.
func (p *Proxy) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tag, path := splitTag(r.URL.Path)
		resource, named := resourceOf(path)
		if r.Method != http.MethodGet || resource == "" || named {
			next.ServeHTTP(w, r)
			return
		}
		k := Key{Tag: tag, Resource: resource}
		q := r.URL.Query()
		watch := q.Get("watch") == "true" || q.Get("watch") == "1"
		sel := q.Get("shardSelector")
		p.add(k, func(c *Count) {
			if watch {
				c.Watches++
				c.Open++
			} else {
				c.Lists++
			}
			for _, s := range c.Selectors {
				if s == sel {
					return
				}
			}
			c.Selectors = append(c.Selectors, sel)
		})
		if watch {
			defer p.add(k, func(c *Count) { c.Open-- })
		}
		cw := &countingWriter{ResponseWriter: w, p: p, k: k, watch: watch}
		defer cw.finish()
		next.ServeHTTP(cw, r)
	})
}

// countingWriter counts the bytes, and for watches the events, of a
// response as the proxy writes it. The bytes are those on the wire; the
// events of a gzip-compressed watch are counted in its decompressed copy.
type countingWriter struct {
	http.ResponseWriter
	p      *Proxy
	k      Key
	watch  bool
	framer framer
	// gz receives a copy of a compressed watch stream; its reader feeds
	// the framer until gzDone.
	gz     *io.PipeWriter
	gzDone chan struct{}
}

func (w *countingWriter) WriteHeader(code int) {
	if w.watch && w.framer == nil {
		w.startStream()
	}
	w.ResponseWriter.WriteHeader(code)
}

// startStream picks the framer of a watch response from its headers.
func (w *countingWriter) startStream() {
	ct, enc := w.Header().Get("Content-Type"), w.Header().Get("Content-Encoding")
	w.framer = newFramer(ct)
	if enc == "gzip" {
		pr, pw := io.Pipe()
		w.gz, w.gzDone = pw, make(chan struct{})
		go w.countGzip(pr, w.framer)
	}
	if enc != "" {
		ct += "; encoding " + enc
	}
	w.p.add(w.k, func(c *Count) { c.Stream = ct })
}

// countGzip counts the events of a compressed watch stream.
func (w *countingWriter) countGzip(r *io.PipeReader, f framer) {
	defer close(w.gzDone)
	defer func() { _, _ = io.Copy(io.Discard, r) }() // never block the writer
	zr, err := gzip.NewReader(r)
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := zr.Read(buf)
		if n > 0 {
			events := f.feed(buf[:n])
			w.p.add(w.k, func(c *Count) { c.WatchEvents += events })
		}
		if err != nil {
			return
		}
	}
}

// finish ends the counting of a response.
func (w *countingWriter) finish() {
	if w.gz != nil {
		_ = w.gz.Close()
		<-w.gzDone
	}
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.framer == nil && w.watch {
		w.startStream()
	}
	n, err := w.ResponseWriter.Write(b)
	events := int64(0)
	switch {
	case w.gz != nil:
		_, _ = w.gz.Write(b[:n])
	case w.watch:
		events = w.framer.feed(b[:n])
	}
	w.p.add(w.k, func(c *Count) {
		if w.watch {
			c.WatchBytes += int64(n)
			c.WatchEvents += events
		} else {
			c.ListBytes += int64(n)
		}
	})
	return n, err
}

// Flush lets httputil.ReverseProxy flush each watch event at once.
func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// framer counts the events in a watch stream fed in pieces.
type framer interface{ feed(b []byte) int64 }

// newFramer picks the framing of a watch response by its Content-Type:
// protobuf streams are 4-byte big-endian length-prefixed frames, JSON
// (and anything else) one event per line.
func newFramer(contentType string) framer {
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && mt == "application/vnd.kubernetes.protobuf" {
		return &lengthFramer{}
	}
	return lineFramer{}
}

type lineFramer struct{}

func (lineFramer) feed(b []byte) int64 {
	var n int64
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// lengthFramer follows length-prefixed frames across writes.
type lengthFramer struct {
	header [4]byte
	have   int    // bytes of the header read so far
	left   uint32 // bytes of the current frame's body still to come
}

func (f *lengthFramer) feed(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		if f.left > 0 {
			step := min(uint32(len(b)), f.left)
			f.left -= step
			b = b[step:]
			continue
		}
		c := copy(f.header[f.have:], b)
		f.have += c
		b = b[c:]
		if f.have == len(f.header) {
			f.have = 0
			f.left = binary.BigEndian.Uint32(f.header[:])
			n++
		}
	}
	return n
}

// splitTag splits /t/<tag>/rest into tag and /rest; other paths have no
// tag.
func splitTag(path string) (tag, rest string) {
	if !strings.HasPrefix(path, tagPrefix) {
		return "", path
	}
	s := strings.TrimPrefix(path, tagPrefix)
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return s, "/"
	}
	return s[:i], s[i:]
}

// resourceOf returns the resource of an API path and whether the path
// names one object (a GET, not a LIST or WATCH).
func resourceOf(path string) (resource string, named bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var rest []string
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		rest = segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		rest = segs[3:]
	default:
		return "", false
	}
	if len(rest) >= 2 && rest[0] == "namespaces" {
		if len(rest) == 2 {
			return "namespaces", true
		}
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return "", false
	}
	return rest[0], len(rest) > 1
}
