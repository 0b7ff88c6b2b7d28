// Command fakeagent stands in for `hangar agent` in the local provider's
// tests, which are about the process lifecycle only: it sleeps until SIGTERM
// and then exits 0. It ignores its arguments, except that a node id
// containing "ignore-term" makes it ignore SIGTERM, so tests can check that
// the provider kills an agent that does not stop within the grace period.
// The end-to-end tests exercise the real agent.
package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	stubborn := false
	for _, a := range os.Args[1:] {
		if strings.Contains(a, "ignore-term") {
			stubborn = true
		}
	}
	if stubborn {
		signal.Ignore(syscall.SIGTERM)
		for {
			time.Sleep(time.Hour)
		}
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
	os.Exit(0)
}
