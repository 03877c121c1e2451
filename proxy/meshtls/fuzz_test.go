package meshtls

import (
	"bytes"
	"testing"
)

// FuzzReadHeader feeds arbitrary bytes to the transport header reader: it
// must not panic, must read no more than the header, and a header it
// accepts must be valid and written back as the very bytes it read.
func FuzzReadHeader(f *testing.F) {
	for _, h := range []Header{{Port: 3306}, {Port: 8080, Name: "web.demo.svc.cluster.local:8080"}} {
		var b bytes.Buffer
		if err := WriteHeader(&b, h); err != nil {
			f.Fatal(err)
		}
		f.Add(append(b.Bytes(), "after"...))
	}
	f.Add([]byte("L5DT\x01\x00\x50\xff\xff"))
	f.Add([]byte("L5DT\x02\x00\x50\x00\x00"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := ReadHeader(r)
		if err != nil {
			return
		}
		if h.Port == 0 || len(h.Name) > MaxHeaderName {
			t.Fatalf("accepted an invalid header %+v", h)
		}
		read := len(in) - r.Len()
		var out bytes.Buffer
		if err := WriteHeader(&out, h); err != nil {
			t.Fatalf("WriteHeader(%+v): %v", h, err)
		}
		if !bytes.Equal(out.Bytes(), in[:read]) {
			t.Fatalf("header %+v read from %x is written as %x", h, in[:read], out.Bytes())
		}
	})
}
