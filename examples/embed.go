// Package examples embeds the example projects, so that `hangar quickstart`
// runs the digits example from any directory with nothing but the binary.
package examples

import "embed"

// Digits holds examples/digits: train.py, score.py and env.yml.
//
//go:embed digits/train.py digits/score.py digits/env.yml
var Digits embed.FS
