package apiserver

import (
	"strconv"
	"strings"
)

// version is an Appwrite response format, as sent in X-Appwrite-Response-Format.
type version struct{ major, minor, patch int }

func (v version) less(o version) bool {
	if v.major != o.major {
		return v.major < o.major
	}
	if v.minor != o.minor {
		return v.minor < o.minor
	}
	return v.patch < o.patch
}

func (v version) String() string {
	return strconv.Itoa(v.major) + "." + strconv.Itoa(v.minor) + "." + strconv.Itoa(v.patch)
}

var (
	v1_0 = version{1, 0, 0}
	v1_4 = version{1, 4, 0}
	v1_5 = version{1, 5, 0}
	v1_6 = version{1, 6, 0}
	v1_7 = version{1, 7, 0}
	v1_8 = version{1, 8, 0}
	v1_9 = version{1, 9, 0}
	// latest is the newest Appwrite server the facade speaks for; a
	// missing header, or a format newer than this, gets its model.
	latest = version{1, 9, 6}
)

// format is the API shape one request is answered in.
type format struct {
	v    version
	name string
	// legacy is a format before 1.0 (Appwrite 0.x), which the facade
	// refuses (refuseLegacy); v is 1.0.0.
	legacy bool
}

// parseFormat reads X-Appwrite-Response-Format. No header, or one that is
// not a version, means the newest format; formats before 1.0 (Appwrite
// 0.x) read as 1.0.0, marked legacy.
func parseFormat(header string) format {
	h := strings.TrimSpace(header)
	if h == "" {
		return format{v: latest, name: latest.String()}
	}
	parts := strings.SplitN(h, ".", 3)
	nums := [3]int{}
	for i, p := range parts {
		// Tolerate suffixes such as "1.6.0-rc1" by reading the leading digits.
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(p[:end])
		if err != nil {
			return format{v: latest, name: latest.String()}
		}
		nums[i] = n
	}
	v := version{nums[0], nums[1], nums[2]}
	switch {
	case v.less(v1_0):
		return format{v: v1_0, name: v1_0.String(), legacy: true}
	case latest.less(v):
		v = latest
	}
	return format{v: v, name: v.String()}
}

// atLeast reports whether the format is o or newer.
func (f format) atLeast(o version) bool { return !f.v.less(o) }
