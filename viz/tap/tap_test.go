package tap

import (
	"fmt"
	"strings"
	"testing"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
)

func reqInit(id uint64, src, dst string) *tapv1.TapEvent {
	return &tapv1.TapEvent{Direction: "outbound", Source: src, Destination: dst, Tls: "true", ServerId: "web.ns",
		DestinationMeta: map[string]string{"pod": "web-" + fmt.Sprint(id)},
		Event:           &tapv1.TapEvent_RequestInit{RequestInit: &tapv1.RequestInit{Id: id, Method: "GET"}}}
}

func rspInit(id uint64) *tapv1.TapEvent {
	return &tapv1.TapEvent{Event: &tapv1.TapEvent_ResponseInit{ResponseInit: &tapv1.ResponseInit{Id: id, HttpStatus: 200}}}
}

func rspEnd(id uint64) *tapv1.TapEvent {
	return &tapv1.TapEvent{Event: &tapv1.TapEvent_ResponseEnd{ResponseEnd: &tapv1.ResponseEnd{Id: id}}}
}

// describe is what an event says of its exchange.
func describe(ev *tapv1.TapEvent) string {
	return strings.Join([]string{ev.Direction, ev.Source, ev.Destination, ev.Tls, ev.ServerId, ev.DestinationMeta["pod"]}, " ")
}

func TestRestoreExchangeFields(t *testing.T) {
	tests := []struct {
		name   string
		events []*tapv1.TapEvent
		want   []string // describe of each event after restore
		left   int      // exchanges remembered at the end
	}{
		{
			name:   "response events get their request-init's fields",
			events: []*tapv1.TapEvent{reqInit(1, "10.0.0.1:1", "10.0.0.9:80"), rspInit(1), rspEnd(1)},
			want: []string{"outbound 10.0.0.1:1 10.0.0.9:80 true web.ns web-1", "outbound 10.0.0.1:1 10.0.0.9:80 true web.ns web-1",
				"outbound 10.0.0.1:1 10.0.0.9:80 true web.ns web-1"},
		},
		{
			name: "interleaved exchanges each get their own",
			events: []*tapv1.TapEvent{reqInit(1, "10.0.0.1:1", "10.0.0.9:80"), reqInit(2, "10.0.0.2:2", "10.0.0.8:80"),
				rspInit(2), rspInit(1), rspEnd(1), rspEnd(2)},
			want: []string{"outbound 10.0.0.1:1 10.0.0.9:80 true web.ns web-1", "outbound 10.0.0.2:2 10.0.0.8:80 true web.ns web-2",
				"outbound 10.0.0.2:2 10.0.0.8:80 true web.ns web-2", "outbound 10.0.0.1:1 10.0.0.9:80 true web.ns web-1",
				"outbound 10.0.0.1:1 10.0.0.9:80 true web.ns web-1", "outbound 10.0.0.2:2 10.0.0.8:80 true web.ns web-2"},
		},
		{
			name:   "a dropped request-init leaves its response events bare",
			events: []*tapv1.TapEvent{rspInit(7), rspEnd(7)},
			want:   []string{"     ", "     "},
		},
		{
			name:   "an exchange without its response-end stays remembered",
			events: []*tapv1.TapEvent{reqInit(3, "10.0.0.3:3", "10.0.0.9:80"), rspInit(3)},
			want:   []string{"outbound 10.0.0.3:3 10.0.0.9:80 true web.ns web-3", "outbound 10.0.0.3:3 10.0.0.9:80 true web.ns web-3"},
			left:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ex exchanges
			var got []string
			for _, ev := range tt.events {
				ex.restore(ev)
				got = append(got, describe(ev))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("restored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(ex) != tt.left {
				t.Errorf("%d exchanges remembered, want %d", len(ex), tt.left)
			}
		})
	}
}

func TestRestoreIsBounded(t *testing.T) {
	var ex exchanges
	for id := range uint64(maxExchanges + 10) {
		ex.restore(reqInit(id, "10.0.0.1:1", "10.0.0.9:80")) // never answered
	}
	if len(ex) != maxExchanges {
		t.Errorf("%d exchanges remembered, want at most %d", len(ex), maxExchanges)
	}
}
