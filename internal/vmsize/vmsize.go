// Package vmsize is the catalog of VM sizes a cluster or instance can use:
// vCPUs, memory, GPUs and hourly prices, with names matched case-insensitively
// as Azure does. The built-in catalog can be replaced from a YAML or JSON file
// (hangar server --vm-sizes FILE).
package vmsize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Size is one VM size.
type Size struct {
	Name     string  `json:"name" yaml:"name"`
	Family   string  `json:"family" yaml:"family"`
	VCPUs    int     `json:"vcpus" yaml:"vcpus"`
	MemoryGB float64 `json:"memory_gb" yaml:"memory_gb"`
	GPUs     int     `json:"gpus" yaml:"gpus"`
	// PricePerHour is the dedicated price in US dollars per node-hour.
	PricePerHour float64 `json:"price_per_hour" yaml:"price_per_hour"`
	// LowPriorityPricePerHour is the low-priority price per node-hour.
	LowPriorityPricePerHour float64 `json:"low_priority_price_per_hour" yaml:"low_priority_price_per_hour"`
}

// Catalog is an immutable set of sizes, looked up case-insensitively.
type Catalog struct {
	byKey map[string]Size
	names []string
}

// Builtin returns the default catalog (prices are Azure pay-as-you-go list
// prices for Linux in East US, rounded; they only feed the cost estimate).
func Builtin() *Catalog {
	c, err := New([]Size{
		{Name: "STANDARD_D1_V2", Family: "standardDv2Family", VCPUs: 1, MemoryGB: 3.5, PricePerHour: 0.057, LowPriorityPricePerHour: 0.012},
		{Name: "STANDARD_D2_V2", Family: "standardDv2Family", VCPUs: 2, MemoryGB: 7, PricePerHour: 0.114, LowPriorityPricePerHour: 0.023},
		{Name: "STANDARD_D3_V2", Family: "standardDv2Family", VCPUs: 4, MemoryGB: 14, PricePerHour: 0.229, LowPriorityPricePerHour: 0.046},
		{Name: "STANDARD_D4_V2", Family: "standardDv2Family", VCPUs: 8, MemoryGB: 28, PricePerHour: 0.458, LowPriorityPricePerHour: 0.092},
		{Name: "STANDARD_DS2_V2", Family: "standardDSv2Family", VCPUs: 2, MemoryGB: 7, PricePerHour: 0.146, LowPriorityPricePerHour: 0.029},
		{Name: "STANDARD_DS3_V2", Family: "standardDSv2Family", VCPUs: 4, MemoryGB: 14, PricePerHour: 0.293, LowPriorityPricePerHour: 0.059},
		{Name: "STANDARD_DS11_V2", Family: "standardDSv2Family", VCPUs: 2, MemoryGB: 14, PricePerHour: 0.185, LowPriorityPricePerHour: 0.037},
		{Name: "Standard_NC6", Family: "standardNCFamily", VCPUs: 6, MemoryGB: 56, GPUs: 1, PricePerHour: 0.90, LowPriorityPricePerHour: 0.18},
		{Name: "Standard_NC12", Family: "standardNCFamily", VCPUs: 12, MemoryGB: 112, GPUs: 2, PricePerHour: 1.80, LowPriorityPricePerHour: 0.36},
		{Name: "Standard_NC24", Family: "standardNCFamily", VCPUs: 24, MemoryGB: 224, GPUs: 4, PricePerHour: 3.60, LowPriorityPricePerHour: 0.72},
	})
	if err != nil {
		panic(err)
	}
	return c
}

// New builds a catalog, refusing an empty list, duplicates (ignoring case),
// sizes without a name, family or vCPUs, and negative or non-finite numbers.
func New(sizes []Size) (*Catalog, error) {
	if len(sizes) == 0 {
		return nil, errors.New("vm sizes: the catalog lists no sizes")
	}
	c := &Catalog{byKey: make(map[string]Size, len(sizes))}
	for i, s := range sizes {
		if strings.TrimSpace(s.Name) == "" {
			return nil, fmt.Errorf("vm size %d: name is required", i)
		}
		if s.VCPUs < 1 {
			return nil, fmt.Errorf("vm size %s: vcpus must be >= 1", s.Name)
		}
		if s.Family == "" {
			return nil, fmt.Errorf("vm size %s: family is required", s.Name)
		}
		if s.GPUs < 0 || !nonNegative(s.MemoryGB) || !nonNegative(s.PricePerHour) || !nonNegative(s.LowPriorityPricePerHour) {
			return nil, fmt.Errorf("vm size %s: memory_gb, gpus and prices must be finite numbers >= 0", s.Name)
		}
		key := strings.ToLower(s.Name)
		if _, dup := c.byKey[key]; dup {
			return nil, fmt.Errorf("vm size %s: listed twice", s.Name)
		}
		c.byKey[key] = s
		c.names = append(c.names, s.Name)
	}
	sort.Strings(c.names)
	return c, nil
}

// nonNegative is false for negative numbers, NaN and infinities (YAML's
// .nan and .inf), which would poison cost estimates and cannot be sent as JSON.
func nonNegative(f float64) bool { return f >= 0 && !math.IsInf(f, 1) }

// Load reads a catalog file: a YAML or JSON (by the .json extension) list of
// sizes, or an object {"sizes": [...]}. Unknown keys are refused in either
// form, and so is a YAML file with more than one document.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read vm sizes: %w", err)
	}
	var sizes []Size
	if strings.EqualFold(filepath.Ext(path), ".json") {
		sizes, err = parseJSON(data)
	} else {
		sizes, err = parseYAML(data)
	}
	if err != nil {
		return nil, fmt.Errorf("parse vm sizes %s: %w", path, err)
	}
	c, err := New(sizes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// file is the wrapped form of a catalog file.
type file struct {
	Sizes []Size `json:"sizes" yaml:"sizes"`
}

func parseJSON(data []byte) ([]Size, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sizes []Size
	var err error
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var f file
		err = dec.Decode(&f)
		sizes = f.Sizes
	} else {
		err = dec.Decode(&sizes)
	}
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON document")
	}
	return sizes, nil
}

func parseYAML(data []byte) ([]Size, error) {
	// Look at the document's shape first, then decode it strictly (a
	// yaml.Node's own Decode would not refuse unknown keys).
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var sizes []Size
	var err error
	if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		var f file
		err = dec.Decode(&f)
		sizes = f.Sizes
	} else {
		err = dec.Decode(&sizes)
	}
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty")
	}
	if err != nil {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file has more than one YAML document")
	}
	return sizes, nil
}

// Lookup finds a size by name, ignoring case.
func (c *Catalog) Lookup(name string) (Size, bool) {
	s, ok := c.byKey[strings.ToLower(name)]
	return s, ok
}

// Names lists the catalog's size names, sorted.
func (c *Catalog) Names() []string { return append([]string(nil), c.names...) }

// All lists the sizes in name order.
func (c *Catalog) All() []Size {
	out := make([]Size, 0, len(c.names))
	for _, n := range c.names {
		out = append(out, c.byKey[strings.ToLower(n)])
	}
	return out
}
