// Package ids makes the random identifiers and secrets Hangar hands out.
package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns prefix + "-" + 12 random lowercase base32 characters
// (60 bits), e.g. "run-k3jd9f0a2mxq".
func New(prefix string) string {
	return prefix + "-" + random(8)[:12]
}

// Secret returns a bearer secret with a recognisable prefix and 160 random bits.
func Secret(prefix string) string {
	return prefix + "_" + random(20)
}

// Hash returns the hex SHA-256 of a secret; the store keeps only this.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("ids: crypto/rand failed: " + err.Error())
	}
	return strings.ToLower(lowerBase32.EncodeToString(b))
}
