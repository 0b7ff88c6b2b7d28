package serving

import "encoding/json"

// swaggerDoc is the OpenAPI 2 document of the service, with or without the
// bearer key scheme on /score.
func swaggerDoc(name string, auth bool) []byte {
	type obj = map[string]any
	errResp := obj{"description": "An error: code, message, request_id (see the error codes in the service docs).",
		"schema": obj{"$ref": "#/definitions/ErrorResponse"}}
	score := obj{
		"operationId": "RunMLService",
		"description": "Runs the service's run() with the request body and returns json.dumps of its result.",
		"consumes":    []string{"application/json", "text/plain"},
		"produces":    []string{"application/json"},
		"parameters": []obj{{
			"name":        "serviceInputPayload",
			"in":          "body",
			"description": "The input passed to run() as a string. JSON bodies are validated first.",
			"required":    true,
			"schema":      obj{"$ref": "#/definitions/ServiceInput"},
		}},
		"responses": obj{
			"200": obj{"description": "json.dumps of what run() returned.", "schema": obj{"$ref": "#/definitions/ServiceOutput"}},
			"400": errResp, "401": errResp, "413": errResp, "415": errResp,
			"500": obj{"description": "run() raised, or returned a value that is not JSON (NaN, Infinity, a set…) or bytes that are not UTF-8; the exception type and message are named, the traceback is in the service log.",
				"schema": obj{"$ref": "#/definitions/ErrorResponse"}},
			"503": obj{"description": "Not ready, no worker running, overloaded, or the worker died; retry after Retry-After seconds.",
				"schema": obj{"$ref": "#/definitions/ErrorResponse"}},
			"504": obj{"description": "No worker started the request within the request timeout (it waited in the queue; nothing was stopped), or run() did not return within the request timeout from when it started (the worker was killed and restarts).",
				"schema": obj{"$ref": "#/definitions/ErrorResponse"}},
		},
	}
	doc := obj{
		"swagger": "2.0",
		"info": obj{
			"title":       name,
			"description": "API specification for the Hangar service " + name,
			"version":     "1.0",
		},
		"schemes":  []string{"http"},
		"consumes": []string{"application/json"},
		"produces": []string{"application/json"},
		"paths": obj{
			"/": obj{"get": obj{
				"operationId": "ServiceHealthCheck",
				"description": "Liveness of the front end: 200 while it runs, even when no worker can answer /score (see /ready).",
				"responses":   obj{"200": obj{"description": "Healthy"}},
			}},
			"/ready": obj{"get": obj{
				"operationId": "ServiceReadiness",
				"description": "Readiness: 200 while a pool serves (every worker's init() returned) and at least one of its workers is up; 503 while starting, after a failed deploy, or while every worker is restarting.",
				"responses":   obj{"200": obj{"description": "Ready"}, "503": errResp},
			}},
			"/score": obj{"post": score},
		},
		"definitions": obj{
			"ServiceInput":  obj{"description": "Whatever the entry script's run() accepts."},
			"ServiceOutput": obj{"description": "Whatever the entry script's run() returns."},
			"ErrorResponse": obj{
				"type": "object",
				"properties": obj{"error": obj{
					"type": "object",
					"properties": obj{
						"code":       obj{"type": "string"},
						"message":    obj{"type": "string"},
						"hint":       obj{"type": "string"},
						"request_id": obj{"type": "string"},
					},
				}},
			},
		},
	}
	if auth {
		doc["securityDefinitions"] = obj{"Bearer": obj{
			"type": "apiKey", "name": "Authorization", "in": "header",
			"description": "Authorization: Bearer <key>; get a key with: hangar service keys " + name,
		}}
		score["security"] = []obj{{"Bearer": []string{}}}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // static document
	}
	return append(b, '\n')
}
