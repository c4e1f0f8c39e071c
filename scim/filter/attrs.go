package filter

import "strings"

// Schema URNs (RFC 7643 §8.7.1, §8.7.2).
const (
	UserURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// Type is an attribute's data type (RFC 7643 §2.3).
type Type string

const (
	String    Type = "string"
	Boolean   Type = "boolean"
	Complex   Type = "complex"
	DateTime  Type = "dateTime"
	Reference Type = "reference"
	Integer   Type = "integer"
)

// Attr describes one attribute of a resource (RFC 7643 §7).
type Attr struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Multi       bool   `json:"multiValued"`
	Description string `json:"description"`
	Required    bool   `json:"required"`
	CaseExact   bool   `json:"caseExact"`
	Mutability  string `json:"mutability"`
	Returned    string `json:"returned"`
	Uniqueness  string `json:"uniqueness"`
	Sub         []Attr `json:"subAttributes,omitempty"`
	// column is the indexed column holding the value, if any.
	column string
	// lowerColumn: the column holds the value lower-cased.
	lowerColumn bool
}

// SubAttr returns the sub-attribute named name (case-insensitively).
func (a Attr) SubAttr(name string) (Attr, bool) {
	for _, s := range a.Sub {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return Attr{}, false
}

// Schema is one schema of a resource type.
type Schema struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Attrs       []Attr `json:"attributes"`
}

// Attr returns the attribute named name (case-insensitively).
func (s Schema) Attr(name string) (Attr, bool) {
	for _, a := range s.Attrs {
		if strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return Attr{}, false
}

// Resource is a resource type: its core schema and extensions.
type Resource struct {
	Name       string // User, Group
	Endpoint   string // /Users
	Core       Schema
	Extensions []Schema
}

// Extension returns the extension schema with URN urn (case-insensitively).
func (r Resource) Extension(urn string) (Schema, bool) {
	for _, s := range r.Extensions {
		if strings.EqualFold(s.ID, urn) {
			return s, true
		}
	}
	return Schema{}, false
}

func str(name, desc string) Attr {
	return Attr{Name: name, Type: String, Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func exact(a Attr) Attr { a.CaseExact = true; return a }

func boolean(name, desc string) Attr {
	return Attr{Name: name, Type: Boolean, Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func complexAttr(name, desc string, multi bool, sub ...Attr) Attr {
	return Attr{Name: name, Type: Complex, Multi: multi, Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none", Sub: sub}
}

func ref(name, desc string) Attr {
	a := str(name, desc)
	a.Type, a.CaseExact = Reference, true
	return a
}

func multi(name, desc string) Attr {
	return complexAttr(name, desc, true, str("value", "The value."), str("display", "A human-readable name."),
		str("type", "A label indicating the function."), boolean("primary", "The preferred value."))
}

// Common attributes of every resource (RFC 7643 §3.1).
var (
	idAttr = Attr{Name: "id", Type: String, CaseExact: true, Mutability: "readOnly", Returned: "always", Uniqueness: "server",
		Description: "Unique identifier assigned by the service provider.", column: "id"}
	externalIDAttr = Attr{Name: "externalId", Type: String, CaseExact: true, Mutability: "readWrite", Returned: "default",
		Uniqueness: "none", Description: "Identifier assigned by the provisioning client.", column: "external_id"}
	metaAttr = Attr{Name: "meta", Type: Complex, Mutability: "readOnly", Returned: "default", Uniqueness: "none",
		Description: "Resource metadata.", Sub: []Attr{
			{Name: "resourceType", Type: String, CaseExact: true, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
			{Name: "created", Type: DateTime, Mutability: "readOnly", Returned: "default", Uniqueness: "none", column: "created"},
			{Name: "lastModified", Type: DateTime, Mutability: "readOnly", Returned: "default", Uniqueness: "none", column: "modified"},
			{Name: "location", Type: Reference, CaseExact: true, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
			{Name: "version", Type: String, CaseExact: true, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
		}}
)

// User is the User resource type with the Enterprise User extension
// (RFC 7643 §4.1, §4.3).
var User = Resource{Name: "User", Endpoint: "/Users",
	Core: Schema{ID: UserURN, Name: "User", Description: "User Account", Attrs: []Attr{
		{Name: "userName", Type: String, Required: true, Mutability: "readWrite", Returned: "default", Uniqueness: "server",
			Description: "Unique identifier for the User, unique in the directory (case-insensitively).", column: "user_name_norm", lowerColumn: true},
		complexAttr("name", "The components of the user's name.", false,
			str("formatted", "The full name."), str("familyName", "The family name."), str("givenName", "The given name."),
			str("middleName", "The middle name."), str("honorificPrefix", "The honorific prefix."), str("honorificSuffix", "The honorific suffix.")),
		withColumn(str("displayName", "The name displayed to end users."), "display_name_norm"),
		str("nickName", "The casual name."),
		ref("profileUrl", "A URI of the user's online profile."),
		str("title", "The user's title."),
		str("userType", "The relationship between the organization and the user."),
		str("preferredLanguage", "The preferred written or spoken language."),
		str("locale", "The default location for localizing values."),
		str("timezone", "The time zone in IANA format."),
		boolean("active", "The user's administrative status."),
		{Name: "password", Type: String, Mutability: "writeOnly", Returned: "never", Uniqueness: "none",
			Description: "Accepted and never stored, returned or audited."},
		multi("emails", "Email addresses."),
		multi("phoneNumbers", "Phone numbers."),
		multi("ims", "Instant messaging addresses."),
		multi("photos", "URLs of photos."),
		complexAttr("addresses", "Physical mailing addresses.", true,
			str("formatted", ""), str("streetAddress", ""), str("locality", ""), str("region", ""),
			str("postalCode", ""), str("country", ""), str("type", ""), boolean("primary", "")),
		readOnly(complexAttr("groups", "Read-only: accepted in requests (Okta sends groups: []) and ignored; membership is managed through /Groups.", true,
			str("value", ""), ref("$ref", ""), str("display", ""), str("type", ""))),
		multi("entitlements", "Entitlements."),
		multi("roles", "Roles."),
		multi("x509Certificates", "Certificates."),
	}},
	Extensions: []Schema{{ID: EnterpriseURN, Name: "EnterpriseUser", Description: "Enterprise User", Attrs: []Attr{
		str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
		str("costCenter", "Name of a cost center."),
		str("organization", "Name of an organization."),
		str("division", "Name of a division."),
		str("department", "Name of a department."),
		complexAttr("manager", "The user's manager (a plain string is accepted as its value).", false,
			str("value", "The id of the manager."), ref("$ref", "The URI of the manager."), str("displayName", "The manager's name.")),
	}}},
}

// Group is the Group resource type (RFC 7643 §4.2).
var Group = Resource{Name: "Group", Endpoint: "/Groups",
	Core: Schema{ID: GroupURN, Name: "Group", Description: "Group", Attrs: []Attr{
		{Name: "displayName", Type: String, Required: true, Mutability: "readWrite", Returned: "default", Uniqueness: "server",
			Description: "Name of the group, unique in the directory (case-insensitively).", column: "display_name_norm", lowerColumn: true},
		complexAttr("members", "Members of the group (users of the same directory).", true,
			exact(str("value", "The id of the member.")), ref("$ref", "The URI of the member."), str("display", "The member's name."),
			str("type", "User.")),
	}},
}

func readOnly(a Attr) Attr { a.Mutability = "readOnly"; return a }

func withColumn(a Attr, col string) Attr { a.column, a.lowerColumn = col, true; return a }

// Common returns the common attributes (id, externalId, meta).
func Common() []Attr { return []Attr{idAttr, externalIDAttr, metaAttr} }
