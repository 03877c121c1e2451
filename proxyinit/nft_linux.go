package proxyinit

import (
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// applyNft replaces linkerd-init's table with the rule sets, each family in
// one netlink transaction, in the calling thread's network namespace, and
// returns how many rules each table holds afterwards.
func applyNft(sets []NftRuleSet) ([]int, error) {
	// The thread's namespace: Run locks the thread into cfg.NetNS.
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("opening the network namespace: %w", err)
	}
	defer ns.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	var counts []int
	for _, s := range sets {
		table := &nftables.Table{Name: NftTable, Family: nftFamily(s.Family)}
		// Adding then deleting makes the delete succeed on a first run.
		conn.AddTable(table)
		conn.DelTable(table)
		conn.AddTable(table)
		chains := map[string]*nftables.Chain{}
		for _, b := range nftBaseChains {
			hook := nftables.ChainHookPrerouting
			if b.Hook == "output" {
				hook = nftables.ChainHookOutput
			}
			chains[b.Name] = conn.AddChain(&nftables.Chain{Name: b.Name, Table: table, Type: nftables.ChainTypeNAT,
				Hooknum: hook, Priority: nftables.ChainPriorityNATDest})
		}
		for _, name := range []string{RedirectChain, OutputChain} {
			chains[name] = conn.AddChain(&nftables.Chain{Name: name, Table: table})
		}
		for _, r := range s.Rules {
			exprs, err := nftExprs(r)
			if err != nil {
				return nil, fmt.Errorf("%s rule %q: %w", s.Family, r, err)
			}
			conn.AddRule(&nftables.Rule{Table: table, Chain: chains[r.Chain], Exprs: exprs})
		}
		if err := conn.Flush(); err != nil {
			return nil, fmt.Errorf("writing the %s table %s with nftables: %w", nftFamilyName(s.Family), NftTable, err)
		}
		n := 0
		for _, c := range chains {
			rules, err := conn.GetRules(table, c)
			if err != nil {
				return nil, fmt.Errorf("reading back the %s table %s: %w", nftFamilyName(s.Family), NftTable, err)
			}
			n += len(rules)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

func nftFamily(f Family) nftables.TableFamily {
	if f == IPv6 {
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyIPv4
}

// nftExprs translates a rule into nftables expressions, as nft would.
func nftExprs(r NftRule) ([]expr.Any, error) {
	var e []expr.Any
	if r.TCP || r.DPort != nil {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}})
	}
	if p := r.DPort; p != nil {
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		if p.First == p.Last {
			e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.First)})
		} else {
			e = append(e, &expr.Range{Op: expr.CmpOpEq, Register: 1,
				FromData: binaryutil.BigEndian.PutUint16(p.First), ToData: binaryutil.BigEndian.PutUint16(p.Last)})
		}
	}
	if r.SkUID >= 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(r.SkUID))})
	}
	if r.SkGID >= 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeySKGID, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(r.SkGID))})
	}
	if r.OIfName != "" {
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, r.OIfName)
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name})
	}
	if d := r.DAddr; d.IsValid() {
		// The destination address in the table's family's header.
		offset, size := uint32(16), uint32(4)
		if d.Addr().Is6() {
			offset, size = 24, 16
		}
		mask := make([]byte, size)
		for i := range d.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: d.Masked().Addr().AsSlice()})
	}
	switch r.Verdict {
	case "return":
		e = append(e, &expr.Verdict{Kind: expr.VerdictReturn})
	case "jump":
		e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Jump})
	case "redirect":
		e = append(e,
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.RedirectPort)},
			&expr.Redir{RegisterProtoMin: 1})
	default:
		return nil, fmt.Errorf("unknown verdict %q", r.Verdict)
	}
	return e, nil
}
