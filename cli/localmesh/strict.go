package localmesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
)

// checkSplitsStrict decodes the TrafficSplits and HTTPRoutes of a manifest
// strictly, as the API server and the policy validator would: an unknown
// field ("wieght") or an invalid value is an error naming the field.
func checkSplitsStrict(data []byte) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", doc, err)
		}
		var tm metav1.TypeMeta
		if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &tm) != nil {
			continue
		}
		group, _, _ := strings.Cut(tm.APIVersion, "/")
		switch {
		case tm.Kind == split.Kind && group == split.GroupName:
			_, err = split.Decode(raw)
		case tm.Kind == policy.KindHTTPRoute && (group == policy.GroupName || group == policy.GatewayGroupName):
			_, err = policy.Decode(raw)
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", doc, err)
		}
	}
}
