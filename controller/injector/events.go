package injector

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// eventQueueSize bounds the events waiting to be written; beyond it, new
// ones are dropped (and logged) rather than slowing admission down.
const eventQueueSize = 256

// eventTimeout bounds writing one event.
const eventTimeout = 5 * time.Second

// eventSink writes Events in the background, so that a review never waits
// for them.
type eventSink struct {
	client    kubernetes.Interface
	component string
	instance  string
	log       *slog.Logger
	queue     chan *corev1.Event
}

func newEventSink(client kubernetes.Interface, component string, log *slog.Logger) *eventSink {
	host, _ := os.Hostname()
	return &eventSink{client: client, component: component, instance: host, log: log, queue: make(chan *corev1.Event, eventQueueSize)}
}

// record queues an event about obj; it never blocks.
func (e *eventSink) record(obj corev1.ObjectReference, eventType, reason, message string) {
	// Events about cluster-scoped objects (a Namespace) live in "default",
	// as the API server requires.
	ns := obj.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := metav1.Now()
	ev := &corev1.Event{
		// Named like client-go's recorder names events (generateName is
		// not honoured by every client).
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", obj.Name, now.UnixNano()), Namespace: ns},
		InvolvedObject:      obj,
		Reason:              reason,
		Message:             message,
		Type:                eventType,
		Source:              corev1.EventSource{Component: e.component},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "linkerd.io/" + e.component,
		ReportingInstance:   e.instance,
	}
	select {
	case e.queue <- ev:
	default:
		e.log.Warn("event queue full; dropping event", "reason", reason, "object", obj.Kind+"/"+obj.Name)
	}
}

// run writes queued events until ctx is done.
func (e *eventSink) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.queue:
			wctx, cancel := context.WithTimeout(ctx, eventTimeout)
			_, err := e.client.CoreV1().Events(ev.Namespace).Create(wctx, ev, metav1.CreateOptions{})
			cancel()
			if err != nil {
				e.log.Warn("could not record event", "reason", ev.Reason, "object", ev.InvolvedObject.Kind+"/"+ev.InvolvedObject.Name, "error", err)
			}
		}
	}
}
