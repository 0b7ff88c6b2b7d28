package compute_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/vmsize"
)

// fieldProblem is one expected problem: the field as the user wrote it and a
// fragment of the message stating the rule.
type fieldProblem struct {
	Field    string
	Fragment string
}

// problems flattens err into its field problems (Details when several fields
// are wrong, else the problem itself). It fails the test when err is not a
// *problem.Error.
func problems(t *testing.T, err error) []*problem.Error {
	t.Helper()
	if err == nil {
		return nil
	}
	p, ok := problem.As(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *problem.Error", err, err)
	}
	if len(p.Details) > 0 {
		return p.Details
	}
	return []*problem.Error{p}
}

// wantProblems checks that err reports exactly the fields of want, in order,
// each InvalidField with a message containing the fragment.
func wantProblems(t *testing.T, err error, want []fieldProblem) {
	t.Helper()
	got := problems(t, err)
	var gotFields, wantFields []string
	for _, p := range got {
		gotFields = append(gotFields, p.Field)
	}
	for _, w := range want {
		wantFields = append(wantFields, w.Field)
	}
	if d := cmp.Diff(wantFields, gotFields); d != "" {
		t.Fatalf("fields mismatch (-want +got):\n%s\nerror: %v", d, err)
	}
	for i, w := range want {
		if got[i].Code != problem.InvalidField {
			t.Errorf("%s: code = %q, want %q", w.Field, got[i].Code, problem.InvalidField)
		}
		if !strings.Contains(got[i].Message, w.Fragment) {
			t.Errorf("%s: message %q does not contain %q", w.Field, got[i].Message, w.Fragment)
		}
	}
}

// nameCases are shared by TestValidateName and the seeds of FuzzValidateName.
var nameCases = []struct {
	name     string
	in       string
	fragment string // "" = valid
}{
	{name: "two characters", in: "ab"},
	{name: "twenty-four characters", in: strings.Repeat("a", 24)},
	{name: "letters digits and dashes", in: "Gpu-Cluster-01"},
	{name: "inner double dash", in: "a--b"},
	{name: "ends with a digit", in: "cpu2"},
	{name: "empty", in: "", fragment: "is required"},
	{name: "one character", in: "a", fragment: "must be 2 to 24 characters long (it has 1)"},
	{name: "twenty-five characters", in: strings.Repeat("a", 25), fragment: "must be 2 to 24 characters long (it has 25)"},
	{name: "starts with a digit", in: "1cluster", fragment: "must start with a letter"},
	{name: "starts with a dash", in: "-cluster", fragment: "must start with a letter"},
	{name: "underscore", in: "my_cluster", fragment: "only letters, digits and '-'"},
	{name: "space", in: "my cluster", fragment: "only letters, digits and '-'"},
	{name: "dot", in: "my.cluster", fragment: "only letters, digits and '-'"},
	{name: "trailing newline", in: "cluster\n", fragment: "only letters, digits and '-'"},
	{name: "non-ASCII letter", in: "clusteré", fragment: "only letters, digits and '-'"},
	{name: "ends with a dash", in: "cluster-", fragment: "must not end with '-'"},
	{name: "two characters ending with a dash", in: "a-", fragment: "must not end with '-'"},
	{name: "reserved local", in: "local", fragment: "reserved name"},
	{name: "reserved local upper case", in: "LOCAL", fragment: "reserved name"},
	{name: "reserved amlcompute mixed case", in: "AmlCompute", fragment: "reserved name"},
	{name: "reserved containerinstance", in: "containerinstance", fragment: "reserved name"},
	{name: "reserved containerinstance mixed case", in: "ContainerInstance", fragment: "reserved name"},
	{name: "reserved word as a prefix is fine", in: "local-2"},
	// Non-ASCII letters are counted as characters, not bytes: 23 characters
	// (26 bytes) is refused for its letters, not for its length.
	{name: "non-ASCII within the length", in: "ensemble-de-données-été", fragment: "only letters, digits and '-'"},
	{name: "non-ASCII length counted in characters", in: strings.Repeat("é", 25), fragment: "(it has 25)"},
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, tc := range nameCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := compute.ValidateName(tc.in)
			if tc.fragment == "" {
				if p != nil {
					t.Fatalf("ValidateName(%q) = %v, want nil", tc.in, p)
				}
				return
			}
			if p == nil {
				t.Fatalf("ValidateName(%q) = nil, want a problem containing %q", tc.in, tc.fragment)
			}
			wantProblems(t, p, []fieldProblem{{"name", tc.fragment}})
		})
	}
}

// nameOK is the name rule written without a regular expression.
func nameOK(s string) bool {
	if len(s) < 2 || len(s) > 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		switch {
		case i == 0 && !letter:
			return false
		case !letter && !digit && c != '-':
			return false
		}
	}
	if s[len(s)-1] == '-' {
		return false
	}
	switch strings.ToLower(s) {
	case "local", "amlcompute", "containerinstance":
		return false
	}
	return true
}

func FuzzValidateName(f *testing.F) {
	for _, tc := range nameCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p := compute.ValidateName(name)
		if ok := nameOK(name); ok != (p == nil) {
			t.Fatalf("ValidateName(%q) = %v; the rule says valid = %v", name, p, ok)
		}
		if p != nil && (p.Field != "name" || p.Code != problem.InvalidField || p.Message == "") {
			t.Fatalf("ValidateName(%q) = %+v, want an InvalidField problem on name with a message", name, p)
		}
	})
}

// cpuLimits is a provider without GPUs (local), the built-in catalog.
func cpuLimits() compute.Limits {
	return compute.Limits{Catalog: vmsize.Builtin(), ProviderHasGPUs: false, Providers: []string{"local"}}
}

// validCluster is a cluster every rule accepts; cases change one thing.
func validCluster() compute.Compute {
	return compute.Compute{
		Name:                       "cpu-cluster",
		Kind:                       compute.KindCluster,
		VMSize:                     "STANDARD_D2_V2",
		VMPriority:                 compute.Dedicated,
		MinNodes:                   0,
		MaxNodes:                   4,
		IdleSecondsBeforeScaledown: 1800,
		Provider:                   "local",
	}
}

func TestComputeValidate(t *testing.T) {
	t.Parallel()
	allSizes := strings.Join(vmsize.Builtin().Names(), ", ")
	tests := []struct {
		name   string
		change func(c *compute.Compute)
		lim    func(l *compute.Limits)
		want   []fieldProblem
		// wantVMSize is the vm size after Validate ("" = unchanged).
		wantVMSize string
	}{
		{name: "valid"},
		{name: "min equals max", change: func(c *compute.Compute) { c.MinNodes, c.MaxNodes = 4, 4 }},
		{name: "idle zero", change: func(c *compute.Compute) { c.IdleSecondsBeforeScaledown = 0 }},
		{name: "low priority", change: func(c *compute.Compute) { c.VMPriority = compute.LowPriority }},
		{name: "one node", change: func(c *compute.Compute) { c.MaxNodes = 1 }},
		{
			name:   "bad name",
			change: func(c *compute.Compute) { c.Name = "9lives" },
			want:   []fieldProblem{{"name", "must start with a letter"}},
		},
		{
			name:   "reserved name any case",
			change: func(c *compute.Compute) { c.Name = "Local" },
			want:   []fieldProblem{{"name", "reserved name"}},
		},
		{
			name:   "type missing",
			change: func(c *compute.Compute) { c.Kind = "" },
			want:   []fieldProblem{{"type", "is required"}},
		},
		{
			name:   "type local cannot be created",
			change: func(c *compute.Compute) { c.Kind = compute.KindLocal },
			want:   []fieldProblem{{"type", "cannot be created"}},
		},
		{
			name:   "max_nodes missing",
			change: func(c *compute.Compute) { c.MaxNodes = 0 },
			want:   []fieldProblem{{"max_nodes", "is required and must be >= 1"}},
		},
		{
			name:   "max_nodes negative",
			change: func(c *compute.Compute) { c.MaxNodes = -2 },
			want:   []fieldProblem{{"max_nodes", "(-2) must be >= 1"}},
		},
		{
			name:   "max_nodes beyond the store's 32 bits",
			change: func(c *compute.Compute) { c.MaxNodes = compute.MaxScaleValue + 1 },
			want:   []fieldProblem{{"max_nodes", "(2147483648) must be <= 2147483647"}},
		},
		{name: "largest max_nodes", change: func(c *compute.Compute) { c.MaxNodes = compute.MaxScaleValue }},
		{
			name:   "idle beyond the store's 32 bits",
			change: func(c *compute.Compute) { c.IdleSecondsBeforeScaledown = compute.MaxScaleValue + 1 },
			want:   []fieldProblem{{"idle_seconds_before_scaledown", "must be <= 2147483647"}},
		},
		{
			name:   "min_nodes negative",
			change: func(c *compute.Compute) { c.MinNodes = -1 },
			want:   []fieldProblem{{"min_nodes", "(-1) must be >= 0"}},
		},
		{
			name:   "min_nodes above max_nodes",
			change: func(c *compute.Compute) { c.MinNodes, c.MaxNodes = 5, 4 },
			want:   []fieldProblem{{"min_nodes", "(5) must be <= max_nodes (4)"}},
		},
		{
			name:   "idle negative",
			change: func(c *compute.Compute) { c.IdleSecondsBeforeScaledown = -1 },
			want:   []fieldProblem{{"idle_seconds_before_scaledown", "(-1) must be >= 0"}},
		},
		{
			name:   "unknown vm size lists the valid ones",
			change: func(c *compute.Compute) { c.VMSize = "STANDARD_Z9" },
			want:   []fieldProblem{{"vm_size", `"STANDARD_Z9" is not a supported VM size; valid sizes: ` + allSizes}},
		},
		{
			name:   "empty vm size",
			change: func(c *compute.Compute) { c.VMSize = "" },
			want:   []fieldProblem{{"vm_size", "is not a supported VM size"}},
		},
		{
			name:       "vm size lower case is canonicalised",
			change:     func(c *compute.Compute) { c.VMSize = "standard_d2_v2" },
			wantVMSize: "STANDARD_D2_V2",
		},
		{
			name:       "vm size mixed case is canonicalised",
			change:     func(c *compute.Compute) { c.VMSize = "Standard_Ds3_V2" },
			wantVMSize: "STANDARD_DS3_V2",
		},
		{
			name:   "GPU size on a provider without GPUs",
			change: func(c *compute.Compute) { c.VMSize = "Standard_NC6" },
			want:   []fieldProblem{{"vm_size", `Standard_NC6 has 1 GPU(s) but node provider "local" has no GPUs`}},
		},
		{
			name:       "GPU size in another case on a provider without GPUs",
			change:     func(c *compute.Compute) { c.VMSize = "STANDARD_NC6" },
			want:       []fieldProblem{{"vm_size", "Standard_NC6 has 1 GPU(s)"}},
			wantVMSize: "Standard_NC6",
		},
		{
			name:       "GPU size on a provider with GPUs",
			change:     func(c *compute.Compute) { c.VMSize = "standard_nc6" },
			lim:        func(l *compute.Limits) { l.ProviderHasGPUs = true },
			wantVMSize: "Standard_NC6",
		},
		{
			name:   "priority empty",
			change: func(c *compute.Compute) { c.VMPriority = "" },
			want:   []fieldProblem{{"vm_priority", `"" must be dedicated or lowpriority`}},
		},
		{
			name:   "priority unknown",
			change: func(c *compute.Compute) { c.VMPriority = "spot" },
			want:   []fieldProblem{{"vm_priority", `"spot" must be dedicated or lowpriority`}},
		},
		{
			name:   "provider not offered",
			change: func(c *compute.Compute) { c.Provider = "docker" },
			want:   []fieldProblem{{"provider", `"docker" is not available; available providers: local`}},
		},
		{
			name:   "empty tag key",
			change: func(c *compute.Compute) { c.Tags = map[string]string{"": "x"} },
			want:   []fieldProblem{{"tags", "tag keys must be 1 to 128 characters"}},
		},
		{
			name:   "long tag value",
			change: func(c *compute.Compute) { c.Tags = map[string]string{"team": strings.Repeat("v", 257)} },
			want:   []fieldProblem{{"tags.team", "at most 256 characters"}},
		},
		{
			name:   "long description",
			change: func(c *compute.Compute) { c.Description = strings.Repeat("d", 1025) },
			want:   []fieldProblem{{"description", "at most 1024 characters"}},
		},
		{
			name: "several problems reported together",
			change: func(c *compute.Compute) {
				c.Name = "x"
				c.MaxNodes = 0
				c.MinNodes = -1
				c.IdleSecondsBeforeScaledown = -5
				c.VMPriority = "Dedicated"
				c.VMSize = "nope"
			},
			want: []fieldProblem{
				{"name", "must be 2 to 24 characters"},
				{"max_nodes", "is required"},
				{"min_nodes", "must be >= 0"},
				{"idle_seconds_before_scaledown", "must be >= 0"},
				{"vm_priority", "must be dedicated or lowpriority"},
				{"vm_size", "is not a supported VM size"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validCluster()
			if tc.change != nil {
				tc.change(&c)
			}
			lim := cpuLimits()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			before := c.VMSize
			err := c.Validate(lim)
			wantProblems(t, err, tc.want)
			wantVMSize := tc.wantVMSize
			if wantVMSize == "" {
				wantVMSize = before
			}
			if c.VMSize != wantVMSize {
				t.Errorf("VMSize after Validate = %q, want %q", c.VMSize, wantVMSize)
			}
		})
	}
}

// TestComputeValidateSeveral checks the shape of a multi-field error: the
// first problem carries all of them in Details, and its text names every
// field, so a CLI that prints only the message still shows them all.
func TestComputeValidateSeveral(t *testing.T) {
	t.Parallel()
	c := validCluster()
	c.Name, c.MinNodes, c.MaxNodes, c.VMSize = "-bad", 3, 2, "STANDARD_NOPE"
	err := c.Validate(cpuLimits())
	p, ok := problem.As(err)
	if !ok {
		t.Fatalf("Validate = %v, want a *problem.Error", err)
	}
	if p.Field != "name" || p.Code != problem.InvalidField {
		t.Errorf("first problem = %s %q, want InvalidField name", p.Code, p.Field)
	}
	var fields []string
	for _, d := range p.Details {
		fields = append(fields, d.Field)
		if d.Code != problem.InvalidField {
			t.Errorf("detail %s has code %s", d.Field, d.Code)
		}
	}
	if diff := cmp.Diff([]string{"name", "min_nodes", "vm_size"}, fields); diff != "" {
		t.Errorf("Details fields mismatch (-want +got):\n%s", diff)
	}
	for _, f := range []string{"name: ", "min_nodes: ", "vm_size: "} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error text %q does not mention %q", err.Error(), f)
		}
	}
	for _, f := range []string{"min_nodes", "vm_size"} {
		if !strings.Contains(p.Message, f) {
			t.Errorf("message %q does not mention %q", p.Message, f)
		}
	}
}

func TestValidateScale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		minN, maxN, idleS int
		want              []fieldProblem
	}{
		{name: "valid", minN: 1, maxN: 2, idleS: 0},
		{name: "min above max", minN: 3, maxN: 2, idleS: 0, want: []fieldProblem{{"min_nodes", "must be <= max_nodes (2)"}}},
		{name: "max zero", minN: 0, maxN: 0, idleS: 10, want: []fieldProblem{{"max_nodes", "is required"}}},
		{name: "all wrong", minN: -1, maxN: -1, idleS: -1, want: []fieldProblem{
			{"max_nodes", "must be >= 1"}, {"min_nodes", "must be >= 0"}, {"idle_seconds_before_scaledown", "must be >= 0"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantProblems(t, compute.ValidateScale(tc.minN, tc.maxN, tc.idleS), tc.want)
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   compute.Compute
		want compute.Compute
	}{
		{
			name: "cluster gets v1 defaults",
			in:   compute.Compute{Kind: compute.KindCluster, MaxNodes: 2},
			want: compute.Compute{Kind: compute.KindCluster, MaxNodes: 2, VMSize: compute.DefaultVMSize, VMPriority: compute.Dedicated, Provider: "local"},
		},
		{
			name: "set fields are kept",
			in:   compute.Compute{Kind: compute.KindCluster, VMSize: "x", VMPriority: compute.LowPriority, Provider: "p"},
			want: compute.Compute{Kind: compute.KindCluster, VMSize: "x", VMPriority: compute.LowPriority, Provider: "p"},
		},
		{
			name: "local is left alone",
			in:   compute.Compute{Kind: compute.KindLocal},
			want: compute.Compute{Kind: compute.KindLocal},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.in
			got.ApplyDefaults()
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("ApplyDefaults mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   compute.Kind
		wantOK bool
	}{
		{"cluster", compute.KindCluster, true},
		{"amlcompute", compute.KindCluster, true},
		{"AmlCompute", compute.KindCluster, true},
		{"local", compute.KindLocal, true},
		{"containerinstance", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, ok := compute.ParseKind(tc.in)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("ParseKind(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
