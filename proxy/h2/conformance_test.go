package h2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
)

// Conformance of the HTTP/2 server (ServeConn), in the manner of h2spec:
// each case drives raw frames from a client written on x/net's Framer and
// checks the server's answer against RFC 9113.

// conformanceServer serves HTTP/2 with opts on a loopback address. Its
// handler reads the request, then answers 200 with the body's length; on
// "/hold" it first waits (up to 3 s) for the stream to fail; on "/stall" it
// reads no body and waits for the stream to fail. handled counts
// the requests that reached the handler.
func conformanceServer(t *testing.T, opts Options) (addr string, handled *atomic.Int32) {
	t.Helper()
	handled = new(atomic.Int32)
	handler := func(s *Stream) {
		defer s.Close()
		handled.Add(1)
		head, err := s.ReadHead()
		if err != nil {
			return
		}
		if head.Value(":path") == "/stall" {
			// The body is never read: the windows are not given back.
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && s.Err() == nil; {
				time.Sleep(5 * time.Millisecond)
			}
			return
		}
		body, err := io.ReadAll(s)
		if err != nil {
			return
		}
		if head.Value(":path") == "/hold" {
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && s.Err() == nil; {
				time.Sleep(5 * time.Millisecond)
			}
		}
		_ = s.Respond([]Field{{Name: ":status", Value: "200"}, {Name: "x-len", Value: strconv.Itoa(len(body))}}, nil, true)
	}
	addr = proxytest.Serve(t, func(_ context.Context, c net.Conn) {
		_ = ServeConn(c, opts, handler, nil)
	})
	return addr, handled
}

// rawClient is an HTTP/2 client speaking raw frames.
type rawClient struct {
	t    *testing.T
	c    net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	// settings are the server's SETTINGS, once read.
	settings map[http2.SettingID]uint32
}

// dialRaw connects to addr and, unless preface is false, sends the
// connection preface and an empty SETTINGS frame.
func dialRaw(t *testing.T, addr string, preface bool) *rawClient {
	t.Helper()
	c, _ := proxytest.Dial(t, addr)
	rc := &rawClient{t: t, c: c, fr: http2.NewFramer(c, c), settings: map[http2.SettingID]uint32{}}
	rc.fr.AllowIllegalWrites = true
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	if preface {
		rc.write(func() error {
			if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
				return err
			}
			return rc.fr.WriteSettings()
		})
	}
	return rc
}

func (rc *rawClient) write(f func() error) {
	rc.t.Helper()
	if err := f(); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// block encodes a request head for path with extra fields.
func (rc *rawClient) block(path string, extra ...string) []byte {
	rc.hbuf.Reset()
	fields := []string{":method", "POST", ":scheme", "http", ":authority", "conformance.example", ":path", path}
	fields = append(fields, extra...)
	for i := 0; i < len(fields); i += 2 {
		_ = rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(rc.hbuf.Bytes())
}

// headers opens stream id with a request for path.
func (rc *rawClient) headers(id uint32, end bool, path string, extra ...string) {
	rc.t.Helper()
	b := rc.block(path, extra...)
	rc.write(func() error {
		return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndHeaders: true, EndStream: end})
	})
}

// next reads the next frame, skipping the server's SETTINGS (recorded and
// acknowledged), SETTINGS acknowledgements and WINDOW_UPDATEs. It returns
// nil at the end of the connection.
func (rc *rawClient) next() http2.Frame {
	rc.t.Helper()
	for {
		_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := rc.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer") {
				return nil
			}
			rc.t.Fatalf("read: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			_ = f.ForeachSetting(func(s http2.Setting) error { rc.settings[s.ID] = s.Val; return nil })
			_ = rc.fr.WriteSettingsAck()
			continue
		case *http2.WindowUpdateFrame:
			continue
		}
		return f
	}
}

// expectGoAway reads until GOAWAY with code, then the end of the connection.
func (rc *rawClient) expectGoAway(code http2.ErrCode) {
	rc.t.Helper()
	for {
		f := rc.next()
		if f == nil {
			rc.t.Fatalf("connection closed without GOAWAY %v", code)
		}
		ga, ok := f.(*http2.GoAwayFrame)
		if !ok {
			continue
		}
		if ga.ErrCode != code {
			rc.t.Fatalf("GOAWAY %v (%q), want %v", ga.ErrCode, ga.DebugData(), code)
		}
		rc.expectClosed()
		return
	}
}

// expectClosed reads until the end of the connection.
func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	for range 1000 {
		if rc.next() == nil {
			return
		}
	}
	rc.t.Fatal("connection not closed")
}

// expectReset reads until RST_STREAM on id, which must carry code.
func (rc *rawClient) expectReset(id uint32, code http2.ErrCode) {
	rc.t.Helper()
	for {
		switch f := rc.next().(type) {
		case nil:
			rc.t.Fatalf("connection closed, want RST_STREAM %v on stream %d", code, id)
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v (%q), want RST_STREAM %v on stream %d", f.ErrCode, f.DebugData(), code, id)
		case *http2.RSTStreamFrame:
			if f.StreamID != id {
				continue
			}
			if f.ErrCode != code {
				rc.t.Fatalf("RST_STREAM %v on stream %d, want %v", f.ErrCode, id, code)
			}
			return
		}
	}
}

// expectStatus reads until the response head of stream id and checks its status.
func (rc *rawClient) expectStatus(id uint32, status string) {
	rc.t.Helper()
	for {
		switch f := rc.next().(type) {
		case nil:
			rc.t.Fatalf("connection closed, want a response on stream %d", id)
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v (%q), want a response on stream %d", f.ErrCode, f.DebugData(), id)
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				rc.t.Fatalf("RST_STREAM %v on stream %d, want a response", f.ErrCode, id)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			if got := f.PseudoValue("status"); got != status {
				rc.t.Fatalf("stream %d: status %s, want %s", id, got, status)
			}
			return
		}
	}
}

// responseOrRefused reads until stream id is answered (true) or refused
// (false).
func (rc *rawClient) responseOrRefused(id uint32) bool {
	rc.t.Helper()
	for {
		switch f := rc.next().(type) {
		case nil:
			rc.t.Fatalf("connection closed, want an answer on stream %d", id)
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v (%q), want an answer on stream %d", f.ErrCode, f.DebugData(), id)
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				if f.ErrCode != http2.ErrCodeRefusedStream {
					rc.t.Fatalf("RST_STREAM %v on stream %d", f.ErrCode, id)
				}
				return false
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				return true
			}
		}
	}
}

// expectPingAck reads until a PING acknowledgement, which must carry data.
func (rc *rawClient) expectPingAck(data [8]byte) {
	rc.t.Helper()
	for {
		switch f := rc.next().(type) {
		case nil:
			rc.t.Fatal("connection closed, want a PING acknowledgement")
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v (%q), want a PING acknowledgement", f.ErrCode, f.DebugData())
		case *http2.PingFrame:
			if !f.IsAck() || f.Data != data {
				rc.t.Fatalf("PING ack=%v %x, want an acknowledgement of %x", f.IsAck(), f.Data, data)
			}
			return
		}
	}
}

func (rc *rawClient) raw(typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) {
	rc.t.Helper()
	rc.write(func() error { return rc.fr.WriteRawFrame(typ, flags, id, payload) })
}

func (rc *rawClient) ping(data [8]byte) {
	rc.t.Helper()
	rc.write(func() error { return rc.fr.WritePing(false, data) })
}

func TestConformance(t *testing.T) {
	pingData := [8]byte{'h', '2', 's', 'p', 'e', 'c', '!', 1}
	big := bytes.Repeat([]byte("x"), 16384)
	tests := []struct {
		name string
		opts Options
		run  func(rc *rawClient)
	}{
		// Connection preface and SETTINGS (RFC 9113 §3.4, §6.5).
		{name: "invalid preface closes the connection", run: func(rc *rawClient) {
			io.WriteString(rc.c, "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
			rc.expectClosed()
		}},
		{name: "HTTP/1.1 instead of the preface", run: func(rc *rawClient) {
			io.WriteString(rc.c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			rc.expectClosed()
		}},
		{name: "server advertises its limits", run: func(rc *rawClient) {
			io.WriteString(rc.c, http2.ClientPreface)
			rc.fr.WriteSettings()
			rc.ping(pingData)
			rc.expectPingAck(pingData)
			if rc.settings[http2.SettingMaxConcurrentStreams] != 7 || rc.settings[http2.SettingMaxHeaderListSize] != DefaultMaxHeaderListSize {
				rc.t.Fatalf("SETTINGS %v", rc.settings)
			}
		}, opts: Options{MaxStreams: 7}},
		{name: "first frame not SETTINGS", run: func(rc *rawClient) {
			io.WriteString(rc.c, http2.ClientPreface)
			rc.ping(pingData)
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "SETTINGS acknowledged", run: func(rc *rawClient) {
			io.WriteString(rc.c, http2.ClientPreface)
			rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
			for {
				f, err := rc.fr.ReadFrame()
				if err != nil {
					rc.t.Fatal(err)
				}
				if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
					return
				}
			}
		}},
		{name: "SETTINGS ack with payload", run: func(rc *rawClient) {
			rc.raw(http2.FrameSettings, http2.FlagSettingsAck, 0, make([]byte, 6))
			rc.expectGoAway(http2.ErrCodeFrameSize)
		}},
		{name: "SETTINGS length not a multiple of 6", run: func(rc *rawClient) {
			rc.raw(http2.FrameSettings, 0, 0, make([]byte, 5))
			rc.expectGoAway(http2.ErrCodeFrameSize)
		}},
		{name: "SETTINGS on a stream", run: func(rc *rawClient) {
			rc.raw(http2.FrameSettings, 0, 1, nil)
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "SETTINGS_ENABLE_PUSH 2", run: func(rc *rawClient) {
			rc.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 2})
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", run: func(rc *rawClient) {
			rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
			rc.expectGoAway(http2.ErrCodeFlowControl)
		}},
		{name: "SETTINGS_MAX_FRAME_SIZE too small", run: func(rc *rawClient) {
			rc.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100})
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "unknown setting ignored", run: func(rc *rawClient) {
			rc.fr.WriteSettings(http2.Setting{ID: 0xff, Val: 1})
			rc.ping(pingData)
			rc.expectPingAck(pingData)
		}},

		// PING (§6.7).
		{name: "PING answered", run: func(rc *rawClient) {
			rc.ping(pingData)
			rc.expectPingAck(pingData)
		}},
		{name: "PING on a stream", run: func(rc *rawClient) {
			rc.raw(http2.FramePing, 0, 1, pingData[:])
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "PING of the wrong length", run: func(rc *rawClient) {
			rc.raw(http2.FramePing, 0, 0, make([]byte, 6))
			rc.expectGoAway(http2.ErrCodeFrameSize)
		}},
		{name: "PING acknowledgement not answered", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WritePing(true, [8]byte{9}) })
			rc.ping(pingData)
			rc.expectPingAck(pingData)
		}},

		// Frames on stream 0 that belong to a stream, and streams in the wrong state (§5.1, §6).
		{name: "DATA on stream 0", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WriteData(0, true, []byte("x")) })
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "HEADERS on stream 0", run: func(rc *rawClient) {
			rc.headers(0, true, "/")
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "RST_STREAM on stream 0", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WriteRSTStream(0, http2.ErrCodeCancel) })
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "DATA on an idle stream", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("x")) })
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "RST_STREAM on an idle stream", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WriteRSTStream(3, http2.ErrCodeCancel) })
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "WINDOW_UPDATE on an idle stream", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WriteWindowUpdate(5, 100) })
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "even stream opened by the client", run: func(rc *rawClient) {
			rc.headers(2, true, "/")
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "PUSH_PROMISE from the client", run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			rc.write(func() error {
				return rc.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: rc.block("/"), EndHeaders: true})
			})
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "DATA after END_STREAM", run: func(rc *rawClient) {
			rc.headers(1, true, "/hold")
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("late")) })
			rc.expectReset(1, http2.ErrCodeStreamClosed)
		}},
		{name: "CONTINUATION on another stream", run: func(rc *rawClient) {
			b := rc.block("/")
			rc.write(func() error {
				return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:2], EndStream: true})
			})
			rc.write(func() error { return rc.fr.WriteContinuation(3, true, b[2:]) })
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "PRIORITY and unknown frames ignored", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WritePriority(9, http2.PriorityParam{StreamDep: 0, Weight: 10}) })
			rc.raw(0xee, 0, 0, []byte("unknown"))
			rc.headers(1, true, "/")
			rc.expectStatus(1, "200")
		}},

		// Flow control (§6.9).
		{name: "connection window overflow", run: func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WriteWindowUpdate(0, 1<<31-1) })
			rc.expectGoAway(http2.ErrCodeFlowControl)
		}},
		{name: "stream window overflow", run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			rc.write(func() error { return rc.fr.WriteWindowUpdate(1, 1<<31-1) })
			rc.expectReset(1, http2.ErrCodeFlowControl)
		}},
		{name: "WINDOW_UPDATE of 0 on the connection", run: func(rc *rawClient) {
			rc.raw(http2.FrameWindowUpdate, 0, 0, []byte{0, 0, 0, 0})
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},
		{name: "WINDOW_UPDATE of 0 on a stream", run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			rc.raw(http2.FrameWindowUpdate, 0, 1, []byte{0, 0, 0, 0})
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "DATA over the stream window", opts: Options{StreamWindow: 65535, ConnWindow: 1 << 20}, run: func(rc *rawClient) {
			rc.headers(1, false, "/stall")
			for range 4 {
				rc.write(func() error { return rc.fr.WriteData(1, false, big) })
			}
			rc.write(func() error { return rc.fr.WriteData(1, true, big[:100]) })
			rc.expectReset(1, http2.ErrCodeFlowControl)
		}},
		{name: "DATA over the connection window", opts: Options{StreamWindow: 65535, ConnWindow: 65535}, run: func(rc *rawClient) {
			rc.headers(1, false, "/stall")
			rc.headers(3, false, "/stall")
			for _, id := range []uint32{1, 3, 1, 3, 1} {
				rc.write(func() error { return rc.fr.WriteData(id, false, big) })
			}
			rc.expectGoAway(http2.ErrCodeFlowControl)
		}},
		{name: "body within the windows", opts: Options{StreamWindow: 65535, ConnWindow: 65535}, run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			for range 3 {
				rc.write(func() error { return rc.fr.WriteData(1, false, big) })
			}
			rc.write(func() error { return rc.fr.WriteData(1, true, big[:100]) })
			rc.expectStatus(1, "200")
		}},

		// Malformed requests (§8.2, §8.3): stream errors.
		{name: "connection-specific field", run: func(rc *rawClient) {
			rc.headers(1, true, "/", "connection", "keep-alive")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "transfer-encoding", run: func(rc *rawClient) {
			rc.headers(1, false, "/", "transfer-encoding", "chunked")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "TE other than trailers", run: func(rc *rawClient) {
			rc.headers(1, true, "/", "te", "gzip")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "TE trailers", run: func(rc *rawClient) {
			rc.headers(1, true, "/", "te", "trailers")
			rc.expectStatus(1, "200")
		}},
		{name: "upper-case field name", run: func(rc *rawClient) {
			rc.headers(1, true, "/", "X-Upper", "1")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "unknown pseudo-header field", run: func(rc *rawClient) {
			rc.headers(1, true, "/", ":bogus", "1")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "pseudo-header field after a regular one", run: func(rc *rawClient) {
			rc.headers(1, true, "/", "x-a", "1", ":method", "GET")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "content-length longer than the body", run: func(rc *rawClient) {
			rc.headers(1, false, "/", "content-length", "10")
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("short")) })
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "content-length shorter than the body", run: func(rc *rawClient) {
			rc.headers(1, false, "/", "content-length", "2")
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("longer")) })
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "content-length without a body", run: func(rc *rawClient) {
			rc.headers(1, true, "/", "content-length", "3")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},
		{name: "content-length matching the body", run: func(rc *rawClient) {
			rc.headers(1, false, "/", "content-length", "5")
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("exact")) })
			rc.expectStatus(1, "200")
		}},
		{name: "trailers without END_STREAM", run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			rc.hbuf.Reset()
			rc.enc.WriteField(hpack.HeaderField{Name: "x-trailer", Value: "1"})
			rc.write(func() error {
				return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.hbuf.Bytes(), EndHeaders: true})
			})
			rc.expectReset(1, http2.ErrCodeProtocol)
		}},

		// Header limits.
		{name: "request head over the header list size: 431", opts: Options{MaxHeaderListSize: 4096}, run: func(rc *rawClient) {
			rc.headers(1, true, "/", "x-big", strings.Repeat("b", 3000), "x-big2", strings.Repeat("c", 3000))
			rc.expectStatus(1, "431")
			rc.headers(3, true, "/") // the connection goes on
			rc.expectStatus(3, "200")
		}},
		{name: "header flood in CONTINUATION frames", run: func(rc *rawClient) {
			rc.hbuf.Reset()
			for i := range 2000 {
				rc.enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: strings.Repeat("f", 500)})
			}
			block := rc.hbuf.Bytes()
			rc.ping(pingData) // the server's SETTINGS are read and acknowledged
			rc.expectPingAck(pingData)
			// The server may stop reading before the flood ends: written
			// on the side, with a framer of its own.
			wfr := http2.NewFramer(rc.c, nil)
			wrote := make(chan struct{})
			defer func() { <-wrote }()
			go func() {
				defer close(wrote)
				if wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:16384], EndStream: true}) != nil {
					return
				}
				for b := block[16384:]; len(b) > 0; {
					n := min(len(b), 16384)
					if wfr.WriteContinuation(1, n == len(b), b[:n]) != nil {
						return
					}
					b = b[n:]
				}
			}()
			rc.expectGoAway(http2.ErrCodeProtocol)
		}},

		// Concurrency, resets and GOAWAY (§5.1.2, §6.4, §6.8).
		{name: "streams over MAX_CONCURRENT_STREAMS refused", opts: Options{MaxStreams: 2}, run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			rc.headers(3, false, "/")
			rc.headers(5, false, "/")
			rc.expectReset(5, http2.ErrCodeRefusedStream)
			rc.write(func() error { return rc.fr.WriteData(1, true, nil) })
			rc.expectStatus(1, "200")
			// A slot is free again once the handler closed its stream,
			// which may be just after the response went out.
			for id := uint32(7); ; id += 2 {
				if id > 200 {
					rc.t.Fatal("no stream accepted after one ended")
				}
				rc.headers(id, true, "/")
				if rc.responseOrRefused(id) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}},
		{name: "client reset ends the stream only", run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			rc.write(func() error { return rc.fr.WriteRSTStream(1, http2.ErrCodeCancel) })
			rc.headers(3, true, "/")
			rc.expectStatus(3, "200")
		}},
		{name: "client GOAWAY: open streams finish", run: func(rc *rawClient) {
			rc.headers(1, false, "/")
			rc.write(func() error { return rc.fr.WriteGoAway(0, http2.ErrCodeNo, nil) })
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("end")) })
			rc.expectStatus(1, "200")
		}},
		{name: "rapid reset", opts: Options{ResetBurst: 20, ResetRate: 1}, run: func(rc *rawClient) {
			for id := uint32(1); id < 400; id += 2 {
				b := rc.block("/")
				if rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndHeaders: true}) != nil ||
					rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					break // the server closed the connection
				}
			}
			rc.expectGoAway(http2.ErrCodeEnhanceYourCalm)
		}},
		{name: "resets under the limit", opts: Options{ResetBurst: 20, ResetRate: 1}, run: func(rc *rawClient) {
			for id := uint32(1); id < 30; id += 2 {
				rc.headers(id, false, "/")
				rc.write(func() error { return rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) })
			}
			rc.headers(31, true, "/")
			rc.expectStatus(31, "200")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := conformanceServer(t, tc.opts)
			preface := !strings.Contains(tc.name, "preface") && tc.name != "server advertises its limits" &&
				tc.name != "first frame not SETTINGS" && tc.name != "SETTINGS acknowledged"
			tc.run(dialRaw(t, addr, preface))
		})
	}
}

// TestRapidResetBounded checks that a rapid-reset client reaches the
// handler a bounded number of times before the connection ends.
func TestRapidResetBounded(t *testing.T) {
	addr, handled := conformanceServer(t, Options{ResetBurst: 50, ResetRate: 10})
	rc := dialRaw(t, addr, true)
	for id := uint32(1); id < 20000; id += 2 {
		b := rc.block("/")
		if rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndHeaders: true}) != nil ||
			rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
	}
	rc.expectGoAway(http2.ErrCodeEnhanceYourCalm)
	// The burst, what refilled meanwhile, and the streams opened before the
	// last reset was read.
	if n := handled.Load(); n > 200 {
		t.Errorf("%d reset requests reached the handler", n)
	}
}

// TestServerReportsRejects checks what Options.OnReject hears of.
func TestServerReportsRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		run    func(rc *rawClient)
		reason string
	}{
		{"header list too large", Options{MaxHeaderListSize: 1024}, func(rc *rawClient) {
			rc.headers(1, true, "/", "x-a", strings.Repeat("a", 600), "x-b", strings.Repeat("b", 600))
			rc.expectStatus(1, "431")
		}, RejectHeaderTooLarge},
		{"connection-specific field", Options{}, func(rc *rawClient) {
			rc.headers(1, true, "/", "connection", "close")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}, RejectMalformed},
		{"content-length mismatch", Options{}, func(rc *rawClient) {
			rc.headers(1, false, "/", "content-length", "1")
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("two")) })
			rc.expectReset(1, http2.ErrCodeProtocol)
		}, RejectMalformed},
		{"upper-case name", Options{}, func(rc *rawClient) {
			rc.headers(1, true, "/", "X-A", "1")
			rc.expectReset(1, http2.ErrCodeProtocol)
		}, RejectMalformed},
		{"rapid reset", Options{ResetBurst: 5, ResetRate: 1}, func(rc *rawClient) {
			for id := uint32(1); id < 100; id += 2 {
				b := rc.block("/")
				if rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndHeaders: true}) != nil ||
					rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					break // the server closed the connection
				}
			}
			rc.expectGoAway(http2.ErrCodeEnhanceYourCalm)
		}, RejectTooManyResets},
		{"DATA on an idle stream", Options{}, func(rc *rawClient) {
			rc.write(func() error { return rc.fr.WriteData(1, true, []byte("x")) })
			rc.expectGoAway(http2.ErrCodeProtocol)
		}, RejectProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reasons := make(chan string, 100)
			tc.opts.OnReject = func(r string) { reasons <- r }
			addr, _ := conformanceServer(t, tc.opts)
			tc.run(dialRaw(t, addr, true))
			select {
			case got := <-reasons:
				if got != tc.reason {
					t.Fatalf("OnReject(%q), want %q", got, tc.reason)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("OnReject not called, want %q", tc.reason)
			}
		})
	}
}

// TestClientRespectsPeerHeaderListSize checks that a client does not send
// a head larger than the server accepts (which could cost every stream on
// the shared connection): the request fails with ErrHeaderListTooLarge and
// the connection goes on.
func TestClientRespectsPeerHeaderListSize(t *testing.T) {
	addr, _ := conformanceServer(t, Options{MaxHeaderListSize: 1024})
	cc := dialClient(t, addr)
	small := reqFields("GET", "/")
	if head, _, _, err := roundTrip(cc, small, nil); err != nil || head.Status != 200 {
		t.Fatalf("small request: %v, %v", head, err)
	}
	big := reqFields("GET", "/", Field{Name: "x-big", Value: strings.Repeat("b", 600)}, Field{Name: "x-big2", Value: strings.Repeat("c", 600)})
	if _, _, _, err := roundTrip(cc, big, nil); !errors.Is(err, ErrHeaderListTooLarge) {
		t.Fatalf("large request: %v, want ErrHeaderListTooLarge", err)
	}
	if head, _, _, err := roundTrip(cc, small, nil); err != nil || head.Status != 200 {
		t.Fatalf("request after the large one: %v, %v", head, err)
	}
	if n := cc.Streams(); n != 0 {
		t.Fatalf("%d streams left reserved", n)
	}
}
