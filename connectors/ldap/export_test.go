package ldap

// ParseRange exposes parseRange to the tests.
var ParseRange = parseRange
