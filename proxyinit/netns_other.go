//go:build !linux

package proxyinit

import "errors"

// inNetNS is only supported on Linux.
func inNetNS(path string, fn func() error) error {
	return errors.New("--netns is only supported on Linux")
}
