//go:build !linux

package proxyinit

import "errors"

func applyNft([]NftRuleSet) ([]int, error) {
	return nil, errors.New("nftables mode needs Linux")
}
