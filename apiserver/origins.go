package apiserver

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	corev1 "k8s.io/api/core/v1"
)

// AnnotationAllowedOrigins, on a project namespace, lists the browser
// origins that may call the project: Appwrite's Web platforms. Entries are
// comma or space separated: a hostname (app.example.com), a wildcard for
// its subdomains (*.example.com), either with a scheme and port to match
// them too (https://*.example.com, http://app.test:3000), or * for any.
const AnnotationAllowedOrigins = "functions.kfn.dev/allowed-origins"

// alwaysAllowedHost is what Appwrite allows whatever a project's
// platforms: its console project's localhost, and the server's own
// hostname (the request's Host).
func alwaysAllowedHost(host string, r *http.Request) bool {
	own := r.Host
	if h, _, err := net.SplitHostPort(own); err == nil {
		own = h
	}
	return host == "localhost" || strings.EqualFold(host, own)
}

// originRule is one entry of AnnotationAllowedOrigins.
type originRule struct {
	scheme, host, port string // scheme and port empty: any
}

// parseAllowedOrigins reads AnnotationAllowedOrigins.
func parseAllowedOrigins(v string) ([]originRule, error) {
	var rules []originRule
	for _, entry := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		rule := originRule{host: entry}
		if scheme, rest, ok := strings.Cut(entry, "://"); ok {
			rule.scheme, rule.host = strings.ToLower(scheme), strings.TrimSuffix(rest, "/")
			if h, p, err := net.SplitHostPort(rule.host); err == nil {
				rule.host, rule.port = h, p
			}
		}
		rule.host = strings.ToLower(rule.host)
		if !validHostPattern(rule.host) {
			return nil, fmt.Errorf("%q is not an origin (scheme://host[:port]), a hostname, *.domain or *", entry)
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// validHostPattern is *, or a hostname (letters, digits, '.', '-'),
// perhaps after "*." for its subdomains.
func validHostPattern(h string) bool {
	if h == "*" {
		return true
	}
	h = strings.TrimPrefix(h, "*.")
	if h == "" {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// matches tells whether an origin's parts match the rule: hostnames as
// Appwrite's Hostname validator does (exact, or "*.d" for subdomains of d).
func (o originRule) matches(scheme, host, port string) bool {
	if o.scheme != "" && o.scheme != scheme || o.port != "" && o.port != port {
		return false
	}
	if o.host == "*" || o.host == host {
		return true
	}
	suffix, wild := strings.CutPrefix(o.host, "*")
	return wild && strings.HasSuffix(host, suffix)
}

// checkOrigin is Appwrite's check of a browser's origin (the Origin
// header, else the Referer): a request that writes (POST, PUT, PATCH,
// DELETE) from an origin the project does not allow, without an API key,
// is refused with general_unknown_origin. An origin without a host
// ("null", file://) passes, as in Appwrite. An allowed Origin gets the
// CORS headers, so the browser lets its page read the answer.
func checkOrigin(c *gin.Context, ns *corev1.Namespace) *apiError {
	origin := c.GetHeader("Origin")
	if origin == "" {
		origin = c.GetHeader("Referer")
	}
	u, err := url.Parse(origin)
	if origin == "" || err == nil && u.Hostname() == "" {
		return nil
	}
	allowed := false
	if err == nil {
		allowed, err = originAllowed(u, c.Request, ns.Annotations[AnnotationAllowedOrigins])
		if err != nil {
			return newErrorf(errServerError, "The project's %s annotation is invalid: %v", AnnotationAllowedOrigins, err)
		}
	}
	if allowed {
		setCORS(c, c.GetHeader("Origin"))
		return nil
	}
	switch c.Request.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if c.GetHeader("X-Appwrite-Key") == "" {
			return newErrorf(errUnknownOrigin, "Invalid Origin. Register your new client (%s) as an allowed origin of the project (the %s annotation of its namespace)",
				hostOf(u, origin), AnnotationAllowedOrigins)
		}
	}
	return nil
}

// originAllowed matches an origin against what Appwrite always allows and
// the project's allowed origins.
func originAllowed(u *url.URL, r *http.Request, annotation string) (bool, error) {
	host := strings.ToLower(u.Hostname())
	if alwaysAllowedHost(host, r) {
		return true, nil
	}
	rules, err := parseAllowedOrigins(annotation)
	if err != nil {
		return false, err
	}
	for _, rule := range rules {
		if rule.matches(strings.ToLower(u.Scheme), host, u.Port()) {
			return true, nil
		}
	}
	return false, nil
}

func hostOf(u *url.URL, origin string) string {
	if u == nil || u.Hostname() == "" {
		return origin
	}
	return u.Hostname()
}
