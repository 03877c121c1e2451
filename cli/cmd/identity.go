package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/cli/portforward"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// identityTarget is a pod whose proxy's certificate to fetch: dial reaches
// its inbound port; identity is the name it serves (the TLS SNI).
type identityTarget struct {
	pod      string
	identity string
	dial     func(ctx context.Context) (net.Conn, error)
	close    func()
}

type identityOptions struct {
	namespace string
	selector  string
	stateDir  string
}

// newCmdIdentity is `linkerd identity`: the certificate each selected
// pod's proxy presents to its meshed peers.
func newCmdIdentity(global *GlobalOptions, env Env) *cobra.Command {
	o := &identityOptions{}
	cmd := &cobra.Command{
		Use:   "identity [flags] (PODS)",
		Short: "Display the certificate(s) of one or more selected pod(s)",
		Long: `Display the certificate that the proxy of each selected pod presents to
meshed peers: the CLI connects to the proxy's inbound port with TLS, naming
the pod's identity, and prints the certificate it is answered with. In a
cluster it port-forwards to the pod; with no kubeconfig, the local mesh at
--state-dir is used (its pods are reachable from the host).`,
		Example: `  # The certificate of pod web in namespace demo.
  linkerd identity -n demo web

  # Every pod labelled app=web.
  linkerd identity -n demo -l app=web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && o.selector == "" {
				return errors.New("name one or more pods, or select them with --selector")
			}
			if len(args) > 0 && o.selector != "" {
				return errors.New("name pods or give --selector, not both")
			}
			sel := labels.Everything()
			if o.selector != "" {
				var err error
				if sel, err = labels.Parse(o.selector); err != nil {
					return fmt.Errorf("--selector: %w", err)
				}
			}
			var targets []identityTarget
			var err error
			if !useLocalMesh(cmd, global) {
				targets, err = kubeIdentityTargets(cmd.Context(), global, o.namespace, args, sel)
			} else {
				targets, err = localIdentityTargets(o.stateDir, o.namespace, args, sel)
			}
			if err != nil {
				return err
			}
			defer func() {
				for _, t := range targets {
					if t.close != nil {
						t.close()
					}
				}
			}()
			return printIdentities(cmd.Context(), cmd.OutOrStdout(), targets)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace of the pod")
	f.StringVarP(&o.selector, "selector", "l", "", "selector (label query) to filter on, supports '=', '==', and '!='")
	addStateDirFlag(f, &o.stateDir)
	return cmd
}

// printIdentities fetches and prints each target's certificate; a pod
// whose proxy cannot be reached ends the command with that error, after
// the certificates already printed.
func printIdentities(ctx context.Context, w io.Writer, targets []identityTarget) error {
	for i, t := range targets {
		cert, err := fetchCertificate(ctx, t)
		if err != nil {
			return fmt.Errorf("pod %s: %w", t.pod, err)
		}
		fmt.Fprintf(w, "\nPOD %s (%d of %d)\n\n", t.pod, i+1, len(targets))
		if _, err := io.WriteString(w, certificateText(cert)); err != nil {
			return err
		}
	}
	return nil
}

// identityTimeout bounds reaching one proxy and its handshake.
const identityTimeout = 10 * time.Second

// fetchCertificate opens a TLS connection to t's proxy naming its identity
// and returns the certificate the proxy answers with. The certificate is
// shown, not trusted: it is not verified (the client has no identity to
// offer, and the proxy accepts peers without one).
func fetchCertificate(ctx context.Context, t identityTarget) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, identityTimeout)
	defer cancel()
	raw, err := t.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("reaching its proxy: %w", err)
	}
	defer raw.Close()
	var peer []*x509.Certificate
	conn := tls.Client(raw, &tls.Config{
		ServerName:         t.identity,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // displayed, not trusted
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer = cs.PeerCertificates
			return nil
		},
	})
	if err := conn.HandshakeContext(ctx); err != nil && len(peer) == 0 {
		return nil, fmt.Errorf("TLS handshake with its proxy (identity %s): %w", t.identity, err)
	}
	_ = conn.Close()
	if len(peer) == 0 {
		return nil, errors.New("its proxy presented no certificate")
	}
	return peer[0], nil
}

// localIdentityTargets resolves pod names (or a selector) in namespace ns
// of the local mesh at stateDir.
func localIdentityTargets(stateDir, ns string, names []string, sel labels.Selector) ([]identityTarget, error) {
	pods, err := localmesh.Pods(stateDir, ns)
	if errors.Is(err, localmesh.ErrNotUp) {
		return nil, fmt.Errorf("no kubeconfig and no local mesh up at %s: start one (linkerd local up, linkerd demo)", stateDir)
	}
	if err != nil {
		return nil, err
	}
	byName := map[string]localmesh.Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	target := func(p localmesh.Pod) identityTarget {
		addr := netip.AddrPortFrom(p.IP, localmesh.InboundPort).String()
		return identityTarget{pod: p.Name, identity: p.Identity, dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}}
	}
	var targets []identityTarget
	if len(names) == 0 {
		for _, p := range pods {
			if sel.Matches(labels.Set(p.Labels)) {
				targets = append(targets, target(p))
			}
		}
		if len(targets) == 0 {
			return nil, fmt.Errorf("no pods in namespace %s match %s", ns, sel)
		}
		return targets, nil
	}
	for _, n := range names {
		p, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("pod %s not found in namespace %s of the local mesh at %s", n, ns, stateDir)
		}
		targets = append(targets, target(p))
	}
	return targets, nil
}

// kubeIdentityTargets resolves pod names (or a selector) in namespace ns of
// the cluster, each reached by a port-forward to its proxy's inbound port.
func kubeIdentityTargets(ctx context.Context, global *GlobalOptions, ns string, names []string, sel labels.Selector) ([]identityTarget, error) {
	cfg, kube, err := kubeClients(global)
	if err != nil {
		return nil, err
	}
	pods, err := kubeIdentityPods(ctx, kube, ns, names, sel)
	if err != nil {
		return nil, err
	}
	targets := make([]identityTarget, 0, len(pods))
	for _, pod := range pods {
		id := proxyIdentity(pod)
		if id == "" {
			return nil, fmt.Errorf("pod %s has no proxy with an identity (not meshed?)", pod.Name)
		}
		name, port := pod.Name, int(k8s.ProxyInboundPort(pod))
		t := identityTarget{pod: name, identity: id}
		var fwd *portforward.Forward
		t.dial = func(ctx context.Context) (net.Conn, error) {
			f, err := portforward.ToPod(ctx, cfg, ns, name, 0, port)
			if err != nil {
				return nil, err
			}
			fwd = f
			var d net.Dialer
			return d.DialContext(ctx, "tcp", f.Addr)
		}
		t.close = func() {
			if fwd != nil {
				fwd.Close()
			}
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// kubeIdentityPods returns the named pods of ns, or those sel selects.
func kubeIdentityPods(ctx context.Context, kube kubernetes.Interface, ns string, names []string, sel labels.Selector) ([]*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var pods []*corev1.Pod
	if len(names) == 0 {
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		for i := range list.Items {
			pods = append(pods, &list.Items[i])
		}
		if len(pods) == 0 {
			return nil, fmt.Errorf("no pods in namespace %s match %s", ns, sel)
		}
		return pods, nil
	}
	for _, n := range names {
		pod, err := kube.CoreV1().Pods(ns).Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("pod %s not found in namespace %s", n, ns)
		}
		if err != nil {
			return nil, fmt.Errorf("reading pod %s/%s: %w", ns, n, err)
		}
		pods = append(pods, pod)
	}
	return pods, nil
}

// envRef is a $(NAME) reference in a container's environment.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// proxyIdentity is the identity the pod's proxy serves, from its
// LINKERD2_PROXY_IDENTITY_LOCAL_NAME with the $(...) references to the
// container's other variables expanded as the kubelet does ("" when the
// pod has no proxy or no identity).
func proxyIdentity(pod *corev1.Pod) string {
	c := k8s.ProxyContainer(pod)
	if c == nil {
		return ""
	}
	vars := map[string]string{}
	expand := func(s string) string {
		return envRef.ReplaceAllStringFunc(s, func(ref string) string {
			if v, ok := vars[ref[2:len(ref)-1]]; ok {
				return v
			}
			return ref
		})
	}
	for _, e := range c.Env {
		v := expand(e.Value)
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.namespace":
				v = pod.Namespace
			case "metadata.name":
				v = pod.Name
			case "spec.serviceAccountName":
				v = k8s.ServiceAccountName(pod)
			case "spec.nodeName":
				v = pod.Spec.NodeName
			}
		}
		vars[e.Name] = v
	}
	id := vars[proxyenv.IdentityLocalName]
	if envRef.MatchString(id) {
		return ""
	}
	return id
}
