package apiserver

import (
	"fmt"
	"sort"
)

// maxMembershipItems bounds each list of a token's membership claims, as
// Appwrite bounds a function's execute list.
const maxMembershipItems = 100

// Membership is what a kfn-minted JWT tells about its user beyond the ID:
// the user attributes Appwrite derives roles from (Auth::getRoles). kfn
// keeps no users, so the token's issuer vouches for them; Appwrite-issued
// tokens carry none (see VerifyAppwriteJWT).
type Membership struct {
	// Teams maps the ID of each team the user is a confirmed member of to
	// the user's roles in it: team:ID and team:ID/ROLE.
	Teams map[string][]string `json:"teams,omitempty"`
	// Memberships are the IDs of the user's confirmed memberships: member:ID.
	Memberships []string `json:"memberships,omitempty"`
	// Labels are the user's labels (Appwrite 1.4+): label:NAME.
	Labels []string `json:"labels,omitempty"`
	// Verified tells whether the user's email (or phone) is verified:
	// users/verified and user:ID/verified, else the /unverified forms.
	// Absent, the facade does not know, and neither form matches.
	Verified *bool `json:"emailVerification,omitempty"`
}

// validate refuses membership claims Appwrite could not have: IDs and
// roles are Appwrite UIDs, labels alphanumeric (at most 36 characters).
func (m Membership) validate() error {
	if len(m.Teams) > maxMembershipItems || len(m.Memberships) > maxMembershipItems || len(m.Labels) > maxMembershipItems {
		return fmt.Errorf("token has more than %d teams, memberships or labels", maxMembershipItems)
	}
	for team, roles := range m.Teams {
		if !ValidUID(team) {
			return fmt.Errorf("token's teams claim has an invalid team ID %q", team)
		}
		for _, r := range roles {
			if !ValidUID(r) {
				return fmt.Errorf("token's teams claim has an invalid role %q in team %q", r, team)
			}
		}
	}
	for _, id := range m.Memberships {
		if !ValidUID(id) {
			return fmt.Errorf("token's memberships claim has an invalid membership ID %q", id)
		}
	}
	for _, l := range m.Labels {
		if !validLabel(l) {
			return fmt.Errorf("token's labels claim has an invalid label %q (up to 36 letters and digits)", l)
		}
	}
	return nil
}

// validLabel is Appwrite's label validator: 1 to 36 ASCII letters and digits.
func validLabel(l string) bool {
	if l == "" || len(l) > 36 {
		return false
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// userRoles are the Appwrite roles of a signed-in user, as Auth::getRoles
// gives them: any, users, user:ID, their verified or unverified forms when
// known, and the roles of the user's teams, memberships and labels.
func userRoles(userID string, m Membership) []string {
	roles := []string{"any", "users", "user:" + userID}
	if m.Verified != nil {
		dim := "/unverified"
		if *m.Verified {
			dim = "/verified"
		}
		roles = append(roles, "users"+dim, "user:"+userID+dim)
	}
	teams := make([]string, 0, len(m.Teams))
	for team := range m.Teams {
		teams = append(teams, team)
	}
	sort.Strings(teams)
	for _, team := range teams {
		roles = append(roles, "team:"+team)
		for _, r := range m.Teams[team] {
			roles = append(roles, "team:"+team+"/"+r)
		}
	}
	for _, id := range m.Memberships {
		roles = append(roles, "member:"+id)
	}
	for _, l := range m.Labels {
		roles = append(roles, "label:"+l)
	}
	return roles
}
