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
// json.dumps(result, allow_nan=False), so NaN and Infinity are refused (500
// RunFailed) rather than sent as invalid JSON. A bytes result is decoded as
// UTF-8 first, strictly (bytes that are not UTF-8 are a 500 RunFailed), so a
// str or bytes result becomes a JSON string. Model files are under
// AZUREML_MODEL_DIR (also HANGAR_MODEL_DIR). The worker's stdout is
// redirected to its stderr, a pipe that the front end copies to the service
// log (off the request path) together with its own events and the traceback
// of every failed run() call. The log is capped at Config.MaxLogBytes
// (100 MiB): past it, it is renamed to LogPath+".1" and starts afresh.
//
// # HTTP
//
//	POST /score        body passed to run(); 200 with the JSON result
//	GET  /             liveness of the front end: 200 "Healthy" while the listener is up,
//	                   whatever the workers' state (a restart loop included: see /ready)
//	GET  /ready        200 while a pool serves (every worker of it returned from init())
//	                   and at least one of its workers is up; else 503 NotReady or NoWorker
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
//	500 RunFailed           run() raised, or returned something json.dumps refuses (NaN and
//	                        Infinity included) or bytes that are not UTF-8: type and message named
//	503 NotReady            no pool has finished init() (or the deployment failed); Retry-After
//	503 Overloaded          every worker busy and Config.MaxQueue requests already waiting; Retry-After
//	503 NoWorker            every worker's restart is failing; Retry-After
//	503 WorkerDied          the worker exited while running the request; it is restarted; Retry-After
//	504 Timeout             no worker started the request within the request timeout (it waited
//	                        in the queue; nothing is killed), or run() ran longer than the
//	                        timeout (its worker is killed and restarted); see Timeouts
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
// The request timeout (Config.RequestTimeout, 60 s by default, changed
// without a restart by SetRequestTimeout) bounds two waits separately:
//
//   - Queueing, from the request's arrival: a request that no worker has
//     started when it expires, whether it waits in the queue or in a
//     worker's pipe behind the request that worker runs, is answered 504
//     ("waited in the queue") and nothing is killed. One already in a
//     worker's pipe is still run when the worker gets to it; its answer is
//     discarded.
//   - run() itself, from when its worker started it (when it was sent to
//     an idle worker, or when the worker's previous answer arrived): a
//     worker still running a request a timeout after starting it is
//     SIGKILLed, the request gets 504 and the worker restarts (its init()
//     runs again).
//
// So an overloaded service sheds load with 504s instead of killing workers
// that are making progress, and a request is answered within about twice
// the timeout. One watchdog loop applies both on the injected clock, every
// tenth of the timeout and at least once a second (and at once after
// SetRequestTimeout); a request times out at most a tick late.
//
// # Workers and pools
//
// A pool is the W workers started from one PoolConfig; the runtime numbers
// them in the order Start and Update created them ("pool N" in the log,
// Status.Generation), which is not the service's generation. A pool serves
// once every worker's init() returned. Update starts a new pool next to the
// serving one and swaps it in atomically when it is ready; the old pool then
// stops gracefully (the requests it holds finish; its queued ones move to
// the new pool). If the new pool fails, the old one keeps serving and Update
// returns the cause (the caller says which update failed).
//
// PoolConfig.InitTimeout (5 minutes unless the caller sets it) bounds import
// + init() of each worker, at a pool's start and at every restart; a pool
// whose init() takes longer fails. Nothing else waits for it: Stop kills a
// pool that is still starting at once, and a newer Update cancels an older
// one still waiting or starting (its workers are killed; it returns
// ErrSuperseded).
//
// A worker that dies is restarted in the background (with backoff while its
// init() keeps failing; the service is Unhealthy meanwhile).
//
// Workers run in their own process group with Pdeathsig SIGKILL (Linux), so
// they die with the server; Stop closes their request pipes, sends SIGTERM to
// the group and SIGKILL after Config.StopGrace.
package serving
