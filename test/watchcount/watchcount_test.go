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

package watchcount

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"net/http/httptest"
	"testing"
)

func TestFramers(t *testing.T) {
	var stream []byte
	for _, n := range []int{3, 0, 300, 70000} {
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], uint32(n))
		stream = append(stream, h[:]...)
		stream = append(stream, make([]byte, n)...)
	}
	for _, chunk := range []int{1, 2, 5, 1000, len(stream)} {
		f := newFramer("application/vnd.kubernetes.protobuf;stream=watch")
		var n int64
		for b := stream; len(b) > 0; {
			c := min(chunk, len(b))
			n += f.feed(b[:c])
			b = b[c:]
		}
		if n != 4 {
			t.Errorf("protobuf in chunks of %d: %d frames, want 4", chunk, n)
		}
	}
	if n := newFramer("application/json").feed([]byte("{\"type\":\"ADDED\"}\n{\"type\":\"MODIFIED\"}\n{")); n != 2 {
		t.Errorf("json: %d events, want 2", n)
	}
}

func TestResourceOf(t *testing.T) {
	for _, tc := range []struct {
		path, resource string
		named          bool
	}{
		{"/api", "", false},
		{"/apis", "", false},
		{"/api/v1/namespaces/a/configmaps", "configmaps", false},
		{"/api/v1/namespaces/a/configmaps/x", "configmaps", true},
		{"/apis/coordination.k8s.io/v1/namespaces/a/leases", "leases", false},
		{"/api/v1/namespaces", "namespaces", false},
		{"/api/v1/namespaces/a", "namespaces", true},
		{"/api/v1/nodes", "nodes", false},
	} {
		r, named := resourceOf(tc.path)
		if r != tc.resource || named != tc.named {
			t.Errorf("resourceOf(%q) = %q, %v; want %q, %v", tc.path, r, named, tc.resource, tc.named)
		}
	}
	if tag, rest := splitTag("/t/r1/api/v1"); tag != "r1" || rest != "/api/v1" {
		t.Errorf("splitTag = %q, %q", tag, rest)
	}
}

func TestGzipStream(t *testing.T) {
	var plain bytes.Buffer
	for range 3 {
		plain.WriteString("{\"type\":\"MODIFIED\"}\n")
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain.Bytes())
	zw.Close()
	p := &Proxy{counts: map[Key]*Count{}}
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	rec.Header().Set("Content-Encoding", "gzip")
	k := Key{Tag: "x", Resource: "configmaps"}
	w := &countingWriter{ResponseWriter: rec, p: p, k: k, watch: true}
	b := z.Bytes()
	w.Write(b[:len(b)/2])
	w.Write(b[len(b)/2:])
	w.finish()
	if c := p.Get(k); c.WatchEvents != 3 || c.WatchBytes != int64(len(b)) {
		t.Errorf("gzip stream: %d events, %d bytes; want 3 events, %d bytes", c.WatchEvents, c.WatchBytes, len(b))
	}
}
