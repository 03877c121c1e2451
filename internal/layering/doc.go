// Package layering holds no code: its test checks the module's import rules.
//
//   - pkg/ holds libraries: nothing in it imports the programs (controller/,
//     proxy/, cli/, await/, proxyinit/, demo/) or the tests (test/, hack/).
//   - cli/ reaches the control plane only where it runs parts of it (the
//     local mesh runs the destination store and the local token issuer,
//     and checks applied policy resources as the policy controller reads
//     them);
//     shared names live in pkg/.
//   - Only tests and benchmarks import test/.
//
// Tests (_test.go files) may cross these lines: e.g. pkg/inject's tests
// check that the proxy accepts the environment the injector writes.
package layering
