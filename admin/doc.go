// Package admin is idsync's admin REST API under /api/v1/ (JSON, one error
// shape {"error":{"code","message"}} with stable codes, OpenAPI 3 document
// at GET /api/v1/openapi.json), the cursor-paged events API over the audit
// log, per-organization webhooks (HMAC-SHA256 signed, retried with
// exponential backoff, paused when an endpoint keeps failing, with a
// delivery log and manual redelivery), invitations (SMTP or development
// log mail, single-use expiring links stored hashed, accepted after a JIT
// login), the JIT vs SCIM comparison report, and the web console under
// /console/ (html/template, no JavaScript; sign-in with an admin key or an
// organization admin's SSO session).
//
// Every request carries an admin API key (engine.Engine.Authenticate, kind
// "admin"): scope "read" may only read, and a key bound to an organization
// sees and changes that organization only — anything else answers
// not_found, so a scoped key cannot even learn that another organization's
// objects exist.
//
// It must not: change the identity graph other than through the engine
// (organization joins by invitation go through Engine.JoinByInvitation)
// — matching, merge, lifecycle and audit are the engine's; log or return a
// token, webhook secret or password except the one response that creates
// it; map engine errors anywhere but at this edge (writeErr).
package admin
