// Package jit provisions people at sign-in: it is idsync's SAML 2.0 service
// provider (github.com/crewjam/saml), OpenID Connect relying party
// (github.com/coreos/go-oidc/v3 with golang.org/x/oauth2, code flow with
// PKCE, state and nonce) and email-domain JIT, plus the claim and attribute
// mappings, group sync modes, login policies and browser sessions around
// them.
//
// It owns the routes /login/{org}/{connection}[/callback|/acs|/metadata],
// /session, /logout and POST /api/v1/jit/provision. A connection is an
// engine source of kind saml, oidc or email-domain whose Config holds a
// Config (see there). Every verified login becomes one engine.Observation of
// that source (Key: the SAML NameID or a named attribute, or OIDC "iss|sub";
// Login: true) and goes through Engine.Apply: matching, linking, conflicts,
// merge and audit are the engine's, never this package's.
//
// It must not: write the graph other than through the engine; trust an
// assertion or token it has not verified; log or audit a token, assertion,
// client secret or cookie; store a client secret (configs name the
// environment variable holding it).
package jit
