package blueprintdiff

import (
	"regexp"
	"strconv"
	"strings"
)

var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)

// version is a parsed semantic version; build metadata is dropped.
type version struct {
	core [3]int
	pre  string
}

func parseVersion(s string) (version, bool) {
	m := semverRE.FindStringSubmatch(s)
	if m == nil {
		return version{}, false
	}
	var v version
	for i := range 3 {
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return version{}, false
		}
		v.core[i] = n
	}
	v.pre = m[4]
	return v, true
}

// ValidVersion reports whether s is a semantic version.
func ValidVersion(s string) bool { _, ok := parseVersion(s); return ok }

// IsPrerelease reports whether s is a pre-release version (1.0.0-rc.1).
func IsPrerelease(s string) bool {
	v, ok := parseVersion(s)
	return ok && v.pre != ""
}

// CompareVersions orders semantic versions (-1, 0, 1): by MAJOR.MINOR.PATCH,
// then a pre-release before its release, pre-releases by their identifiers.
// Text that is not a version sorts before every version.
func CompareVersions(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := range 3 {
		if va.core[i] != vb.core[i] {
			if va.core[i] < vb.core[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case va.pre == vb.pre:
		return 0
	case va.pre == "":
		return 1
	case vb.pre == "":
		return -1
	}
	return comparePre(va.pre, vb.pre)
}

// comparePre orders pre-release identifiers as semver says: numeric ones
// numerically and before alphanumeric ones, fewer identifiers first.
func comparePre(a, b string) int {
	xa, xb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(xa) && i < len(xb); i++ {
		na, ea := strconv.Atoi(xa[i])
		nb, eb := strconv.Atoi(xb[i])
		switch {
		case ea == nil && eb == nil:
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		default:
			if c := strings.Compare(xa[i], xb[i]); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(xa) < len(xb):
		return -1
	case len(xa) > len(xb):
		return 1
	}
	return 0
}

// Bump is the step from version old to version new: Major when MAJOR
// grows, Minor when MINOR does, Patch when PATCH does, None when
// MAJOR.MINOR.PATCH is the same or lower (pre-release and build
// identifiers are not a bump), or when either is not a version.
func Bump(old, new string) Level {
	vo, ok1 := parseVersion(old)
	vn, ok2 := parseVersion(new)
	if !ok1 || !ok2 {
		return None
	}
	for i, l := range []Level{Major, Minor, Patch} {
		switch {
		case vn.core[i] > vo.core[i]:
			return l
		case vn.core[i] < vo.core[i]:
			return None
		}
	}
	return None
}
