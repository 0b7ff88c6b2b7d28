// Package serving is the runtime of one real-time inference service: a Go
// HTTP front end (auth, limits, timeouts, request ids, backpressure) in front
// of W Python worker processes that import the user's entry script once and
// answer run() calls over a framed pipe protocol. The service manager starts
// one Service per deployed service with Start, replaces its code with Update
// and ends it with Stop.
//
// # Entry script
//
// The entry script follows the Azure ML scoring-script contract: init() runs
// once per worker (it is optional here), run(raw_data) gets the request body
// as a str and returns something JSON-serialisable; the response body is
// json.dumps of it (bytes are decoded as UTF-8 first, so a str or bytes
// result becomes a JSON string). Model files are under AZUREML_MODEL_DIR
// (also HANGAR_MODEL_DIR). The worker's stdout is redirected to its stderr,
// which goes to the service log together with the front end's events and the
// traceback of every failed run() call.
//
// # HTTP
//
//	POST /score        body passed to run(); 200 with the JSON result
//	GET  /             liveness: 200 "Healthy" while the listener is up
//	GET  /ready        200 once every worker of a pool returned from init(), else 503
//	GET  /swagger.json OpenAPI 2 description of /score
//
// Every response carries X-Request-Id (the client's own, when it sends a
// short printable one, else a fresh UUID). Errors are JSON:
// {"error": {"code", "message", "request_id", ...}}.
//
//	400 MalformedJSON       JSON body that does not parse; line, column and offset named
//	401 Unauthorized        auth on and no/wrong "Authorization: Bearer <key>"
//	404 NotFound, 405 MethodNotAllowed
//	413 PayloadTooLarge     body over Config.MaxBodyBytes
//	415 UnsupportedMediaType Content-Type not JSON (application/json, */*+json) or text/plain
//	500 RunFailed           run() raised (or returned something json.dumps refuses): type and message named
//	503 NotReady            no pool has finished init() (or the deployment failed); Retry-After
//	503 Overloaded          every worker busy and Config.MaxQueue requests already waiting; Retry-After
//	503 NoWorker            every worker's restart is failing; Retry-After
//	503 WorkerDied          the worker exited while running the request; it is restarted; Retry-After
//	504 Timeout             no answer within Config.RequestTimeout (queueing included); a worker
//	                        still running the request is killed and restarted
//
// A client that goes away while its request waits in the queue is dropped
// from the queue (nothing is answered).
//
// A missing Content-Type counts as JSON. Only JSON bodies are validated; a
// text/plain body reaches run() as is.
//
// # Dispatch
//
// A request goes to the least loaded worker. Each worker holds at most two
// requests: the one it runs and the next one, already written to its pipe,
// so that under load it never sleeps between requests (in a 2-vCPU VM that
// gave about 1.5 times the throughput of one-at-a-time dispatch, because
// every wakeup there is expensive). Idle workers are always chosen
// first. When every worker holds two, requests wait in a FIFO queue of at
// most Config.MaxQueue; the goroutine that reads a worker's answer writes
// the next queued request to that worker before waking the answered
// request's handler. A request never runs twice: if a worker dies or times
// out, the request it was running fails (503 or 504) and the one waiting in
// its pipe, which it had not started, is dispatched again.
//
// # Timeouts
//
// One watchdog loop ticks on the injected clock every tenth of
// RequestTimeout, and at least once a second. It kills a worker whose running
// request is past its deadline (arrival + RequestTimeout), which answers
// that request 504 and restarts the worker, and answers 504 to queued
// requests past theirs. A request therefore times out at most a tick after
// its deadline.
//
// # Workers and generations
//
// A pool is one generation of W workers started from one PoolConfig. A pool
// serves once every worker's init() returned. Update starts a new pool next
// to the serving one and swaps it in atomically when it is ready; the old
// pool then stops gracefully (the requests it holds finish; its queued ones
// move to the new pool). If the new pool fails, the old one keeps serving
// and Update returns the error.
//
// A worker that dies is restarted in the background (with backoff while its
// init() keeps failing; the service is Unhealthy meanwhile).
//
// Workers run in their own process group with Pdeathsig SIGKILL (Linux), so
// they die with the server; Stop closes their request pipes, sends SIGTERM to
// the group and SIGKILL after Config.StopGrace.
package serving
