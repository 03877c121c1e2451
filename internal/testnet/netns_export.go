package testnet

// RunInNetNS runs fn on a dedicated OS thread that has joined the network
// namespace at nsPath (e.g. /run/netns/NAME), and returns fn's error.
// Sockets fn creates on its own goroutine belong to that namespace for their
// whole life; goroutines fn starts do not run in it. Pod.Do is the same for
// a pod of a Network; this is for namespaces made by other harnesses (such
// as test/cluster's node).
func RunInNetNS(nsPath string, fn func() error) error { return runInNetNS(nsPath, fn) }
