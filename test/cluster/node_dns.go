package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/linkerd-go/linkerd/internal/images"
)

// The cluster DNS: CoreDNS with the kubernetes plugin, as a Deployment in
// kube-system behind the kube-dns Service at ClusterDNSIP, the address the
// kubelet writes into every pod's resolv.conf. Names outside the cluster
// get NXDOMAIN: nothing is forwarded out of the node.

const (
	dnsName        = "coredns"
	dnsServiceName = "kube-dns"
	dnsAppLabel    = "k8s-app"
	// dnsReadyPort serves CoreDNS's ready plugin.
	dnsReadyPort = 8181
)

// corefile is CoreDNS's configuration.
var corefile = strings.Join([]string{
	ClusterDomain + ":53 in-addr.arpa:53 ip6.arpa:53 {",
	"    errors",
	"    health :8080",
	fmt.Sprintf("    ready :%d", dnsReadyPort),
	"    kubernetes " + ClusterDomain + " in-addr.arpa ip6.arpa {",
	"        pods insecure",
	"        fallthrough in-addr.arpa ip6.arpa",
	"        ttl 5",
	"    }",
	"    cache 5",
	"    loadbalance",
	"}",
	".:53 {",
	"    errors",
	"    template ANY ANY {",
	"        rcode NXDOMAIN",
	"    }",
	"}",
	"",
}, "\n")

// dnsObjects returns the cluster DNS's objects.
func dnsObjects() (*corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *corev1.ConfigMap, *appsv1.Deployment, *corev1.Service) {
	ns := metav1.NamespaceSystem
	labels := map[string]string{dnsAppLabel: dnsServiceName}
	meta := metav1.ObjectMeta{Name: dnsName, Namespace: ns, Labels: labels}
	sa := &corev1.ServiceAccount{ObjectMeta: meta}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "system:" + dnsName},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "system:" + dnsName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	}
	cm := &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"Corefile": corefile}}
	replicas := int32(1)
	deploy := &appsv1.Deployment{
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: sa.Name,
					// Not ClusterFirst: CoreDNS is the cluster DNS.
					DNSPolicy: corev1.DNSDefault,
					Containers: []corev1.Container{{
						Name:            dnsName,
						Image:           images.CoreDNSRef,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"-conf", "/etc/coredns/Corefile"},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: "/ready", Port: intstr.FromInt32(dnsReadyPort),
							}},
							PeriodSeconds: 1,
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{
						Name: "config",
						VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name},
						}},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: dnsServiceName, Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{
			ClusterIP: ClusterDNSIP,
			Selector:  labels,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
	return sa, role, binding, cm, deploy, svc
}

// deployDNS creates the cluster DNS and waits until it answers.
func (n *Node) deployDNS(ctx context.Context) error {
	sa, role, binding, cm, deploy, svc := dnsObjects()
	c := n.Client
	ns := metav1.NamespaceSystem
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	creates := []func() error{
		func() error {
			_, err := c.CoreV1().ServiceAccounts(ns).Create(cctx, sa, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.RbacV1().ClusterRoles().Create(cctx, role, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.RbacV1().ClusterRoleBindings().Create(cctx, binding, metav1.CreateOptions{})
			return err
		},
		func() error { _, err := c.CoreV1().ConfigMaps(ns).Create(cctx, cm, metav1.CreateOptions{}); return err },
		func() error { _, err := c.CoreV1().Services(ns).Create(cctx, svc, metav1.CreateOptions{}); return err },
		func() error {
			_, err := c.AppsV1().Deployments(ns).Create(cctx, deploy, metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range creates {
		if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster DNS: %w", err)
		}
	}
	err := n.poll(ctx, "CoreDNS", 2*time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, dnsName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas < 1 {
			return errors.New("no available replica")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w%s", err, n.podReport(ctx, ns))
	}
	return nil
}

// podReport describes the pods of a namespace and its warning events, for
// an error message.
func (n *Node) podReport(ctx context.Context, ns string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var b strings.Builder
	pods, err := n.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("\n(listing pods in %s: %v)", ns, err)
	}
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "\npod %s/%s: %s", ns, p.Name, p.Status.Phase)
		for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			switch {
			case s.State.Waiting != nil:
				fmt.Fprintf(&b, "; %s waiting: %s %s", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message)
			case s.State.Terminated != nil:
				fmt.Fprintf(&b, "; %s terminated: %s (exit %d) %s", s.Name, s.State.Terminated.Reason, s.State.Terminated.ExitCode, s.State.Terminated.Message)
			default:
				fmt.Fprintf(&b, "; %s running, ready=%t", s.Name, s.Ready)
			}
		}
	}
	events, err := n.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err == nil {
		for _, e := range events.Items {
			fmt.Fprintf(&b, "\nevent %s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}
