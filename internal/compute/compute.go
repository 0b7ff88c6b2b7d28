// Package compute defines a compute target — a named place where runs go —
// and the rules every compute must satisfy before anything is created.
package compute

import (
	"errors"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/vmsize"
)

// Kind is the API type of a compute.
type Kind string

// Kinds built so far. The CLI also accepts Azure ML v1 aliases (ParseKind).
const (
	KindLocal   Kind = "local"
	KindCluster Kind = "cluster"
)

// ParseKind maps a user's kind word (including v1 aliases such as
// "amlcompute") to a Kind.
func ParseKind(s string) (Kind, bool) {
	switch strings.ToLower(s) {
	case "cluster", "amlcompute":
		return KindCluster, true
	case "local":
		return KindLocal, true
	}
	return "", false
}

// ProvisioningState is the compute's provisioning state (DESIGN §4).
type ProvisioningState string

// Provisioning states.
const (
	StateCreating  ProvisioningState = "Creating"
	StateSucceeded ProvisioningState = "Succeeded"
	StateUpdating  ProvisioningState = "Updating"
	StateFailed    ProvisioningState = "Failed"
	StateDeleting  ProvisioningState = "Deleting"
)

// Priority is a cluster's VM priority.
type Priority string

// Priorities.
const (
	Dedicated   Priority = "dedicated"
	LowPriority Priority = "lowpriority"
)

// Default values, as in Azure ML v1.
const (
	DefaultVMSize                     = "STANDARD_D2_V2"
	DefaultIdleSecondsBeforeScaledown = 1800
)

// ErrNotFound is returned when no compute has the requested name.
var ErrNotFound = errors.New("compute not found")

// ProvisioningError is one entry of provisioning_errors.
type ProvisioningError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Compute is one compute target of a workspace.
type Compute struct {
	ID          string
	Workspace   string
	Name        string
	Kind        Kind
	Description string
	Tags        map[string]string

	// Cluster fields.
	VMSize                     string
	VMPriority                 Priority
	MinNodes                   int
	MaxNodes                   int
	IdleSecondsBeforeScaledown int
	// Provider names the node provider ("local").
	Provider string
	// Python overrides the interpreter runs use on this compute ("" = python3).
	Python string

	ProvisioningState  ProvisioningState
	ProvisioningErrors []ProvisioningError
	CreatedBy          string
	CreatedAt          time.Time
	ModifiedAt         time.Time
	// NodeSeq numbers nodes so their names are deterministic.
	NodeSeq int64
}

// reserved names cannot be used for user computes (v1 rule).
var reserved = map[string]bool{"local": true, "amlcompute": true, "containerinstance": true}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)

// ValidateName checks the compute name rules: 2–24 characters of letters,
// digits and '-', starting with a letter, not ending with '-', not reserved.
func ValidateName(name string) *problem.Error {
	// Count characters, not bytes, so a name with a non-ASCII letter is
	// refused for that letter rather than for a length the user cannot see.
	n := utf8.RuneCountInString(name)
	switch {
	case name == "":
		return problem.Field("name", "is required")
	case n < 2 || n > 24:
		return problem.Field("name", "%q must be 2 to 24 characters long (it has %d)", name, n)
	case !nameRE.MatchString(name):
		return problem.Field("name", "%q must start with a letter and contain only letters, digits and '-'", name)
	case strings.HasSuffix(name, "-"):
		return problem.Field("name", "%q must not end with '-'", name)
	case reserved[strings.ToLower(name)]:
		return problem.Field("name", "%q is a reserved name; choose a different name (reserved: amlcompute, containerinstance, local)", name)
	}
	return nil
}

// Limits tells validation what the node provider can offer.
type Limits struct {
	Catalog *vmsize.Catalog
	// ProviderHasGPUs is false for providers that cannot give GPUs (local).
	ProviderHasGPUs bool
	// Providers lists the provider names this server offers.
	Providers []string
}

// ApplyDefaults fills unset cluster fields with v1 defaults.
func (c *Compute) ApplyDefaults() {
	if c.Kind != KindCluster {
		return
	}
	if c.VMSize == "" {
		c.VMSize = DefaultVMSize
	}
	if c.VMPriority == "" {
		c.VMPriority = Dedicated
	}
	if c.Provider == "" {
		c.Provider = "local"
	}
}

// Validate checks every field of a compute about to be created or updated and
// reports all problems together. It canonicalises the vm size's spelling.
func (c *Compute) Validate(lim Limits) error {
	var l problem.List
	if p := ValidateName(c.Name); p != nil {
		l.AddErr(p)
	}
	switch c.Kind {
	case KindCluster:
	case "":
		l.Add("type", "is required (one of: cluster, amlcompute)")
	default:
		l.Add("type", "%q cannot be created here (creatable: cluster, alias amlcompute)", c.Kind)
	}
	if c.Kind == KindCluster {
		validateScale(&l, c.MinNodes, c.MaxNodes, c.IdleSecondsBeforeScaledown)
		switch c.VMPriority {
		case Dedicated, LowPriority:
		default:
			l.Add("vm_priority", "%q must be dedicated or lowpriority", c.VMPriority)
		}
		if size, ok := lim.Catalog.Lookup(c.VMSize); !ok {
			l.Add("vm_size", "%q is not a supported VM size; valid sizes: %s", c.VMSize, strings.Join(lim.Catalog.Names(), ", "))
		} else {
			c.VMSize = size.Name
			if size.GPUs > 0 && !lim.ProviderHasGPUs {
				l.Add("vm_size", "%s has %d GPU(s) but node provider %q has no GPUs; choose a CPU size such as %s", size.Name, size.GPUs, c.Provider, DefaultVMSize)
			}
		}
		if len(lim.Providers) > 0 && !contains(lim.Providers, c.Provider) {
			l.Add("provider", "%q is not available; available providers: %s", c.Provider, strings.Join(lim.Providers, ", "))
		}
	}
	validateTags(&l, c.Tags)
	if len(c.Description) > 1024 {
		l.Add("description", "must be at most 1024 characters")
	}
	return l.Err()
}

// ValidateScale checks scale settings on their own (used by update).
func ValidateScale(minNodes, maxNodes, idle int) error {
	var l problem.List
	validateScale(&l, minNodes, maxNodes, idle)
	return l.Err()
}

// MaxScaleValue bounds max_nodes and idle_seconds_before_scaledown: the
// store keeps scale settings in 32-bit integer columns (PostgreSQL INTEGER).
const MaxScaleValue = math.MaxInt32

func validateScale(l *problem.List, minNodes, maxNodes, idle int) {
	if maxNodes < 1 {
		if maxNodes == 0 {
			l.Add("max_nodes", "is required and must be >= 1")
		} else {
			l.Add("max_nodes", "(%d) must be >= 1", maxNodes)
		}
	} else if maxNodes > MaxScaleValue {
		l.Add("max_nodes", "(%d) must be <= %d", maxNodes, MaxScaleValue)
	}
	if minNodes < 0 {
		l.Add("min_nodes", "(%d) must be >= 0", minNodes)
	} else if maxNodes >= 1 && minNodes > maxNodes {
		l.Add("min_nodes", "(%d) must be <= max_nodes (%d)", minNodes, maxNodes)
	}
	if idle < 0 {
		l.Add("idle_seconds_before_scaledown", "(%d) must be >= 0", idle)
	} else if idle > MaxScaleValue {
		l.Add("idle_seconds_before_scaledown", "(%d) must be <= %d", idle, MaxScaleValue)
	}
}

func validateTags(l *problem.List, tags map[string]string) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || len(k) > 128 {
			l.Add("tags", "tag keys must be 1 to 128 characters")
		}
		if len(tags[k]) > 256 {
			l.Add("tags."+k, "tag values must be at most 256 characters")
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
