package apiserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Labels and names of the objects that configure projects and credentials.
const (
	// APIKeysSecretName is the Secret holding a project's API keys: for
	// each key NAME, the data keys NAME + APIKeyHashSuffix (the hex SHA-256
	// of the key) and NAME + APIKeyScopesSuffix (its scopes, comma or space
	// separated). One fixed name, so the facade may read it, and the JWT
	// key, without the right to read any other Secret.
	APIKeysSecretName = "kfn-api-keys"
	// APIKeyHashSuffix ends the data key holding an API key's hash.
	APIKeyHashSuffix = ".hash"
	// APIKeyScopesSuffix ends the data key holding an API key's scopes.
	APIKeyScopesSuffix = ".scopes"
	// JWTSecretName is the Secret holding the project's JWT signing key.
	JWTSecretName = "kfn-jwt"
	// JWTSecretKey is the key of the signing key in JWTSecretName.
	JWTSecretKey = "key"
	// JWTAppwriteKey is the key, in JWTSecretName, of the Appwrite
	// server's _APP_OPENSSL_KEY_V1: tokens its account.createJWT() issued
	// are accepted (VerifyAppwriteJWT).
	JWTAppwriteKey = "appwrite-key"
	// JWTMaxAge is how long a JWT is accepted after it was issued.
	JWTMaxAge = 900 * time.Second
	// AppwriteJWTMaxLifetime bounds an Appwrite-issued JWT: from its iat,
	// when it has one, and from now, to its exp (Appwrite 1.0 issues them
	// for 900 s, newer servers for up to 3600 s).
	AppwriteJWTMaxLifetime = 3600 * time.Second
	// jwtLeeway tolerates clock skew, as Appwrite does.
	jwtLeeway = 10 * time.Second
)

// Scopes.
const (
	scopeExecutionRead  = "execution.read"
	scopeExecutionWrite = "execution.write"
)

type callerKind int

const (
	guest callerKind = iota
	user
	apiKey
)

// caller is who sent a request.
type caller struct {
	kind      callerKind
	userID    string
	sessionID string
	jwt       string
	keyName   string
	scopes    map[string]bool
	// userRoles are a user's Appwrite roles (userRoles).
	userRoles []string
}

// roleScopes are the scopes of guests and users (Appwrite's roles.php):
// guests may create executions but not read them.
var roleScopes = map[callerKind]map[string]bool{
	guest: {scopeExecutionWrite: true},
	user:  {scopeExecutionRead: true, scopeExecutionWrite: true},
}

func (c caller) has(scope string) bool {
	// Appwrite 1.9 renamed execution.* to executions.*; either grants.
	return c.scopes[scope] || c.scopes[strings.Replace(scope, "execution.", "executions.", 1)]
}

// roles are the Appwrite roles the caller holds, matched against a
// function's execute list.
func (c caller) roles() []string {
	switch c.kind {
	case user:
		return c.userRoles
	case guest:
		return []string{"any", "guests"}
	}
	return []string{"any"}
}

func (c caller) mayExecute(execute []string) bool {
	if c.kind == apiKey {
		return true // API keys run with authorization disabled
	}
	for _, r := range c.roles() {
		if slices.Contains(execute, r) {
			return true
		}
	}
	return false
}

// canSee tells whether the caller may read an execution created by userID:
// users see their own (read("user:ID")), API keys see all.
func (c caller) canSee(userID string) bool {
	switch c.kind {
	case apiKey:
		return true
	case user:
		return userID == c.userID
	}
	return false
}

// authenticate finds the caller of a request in a project namespace.
func (s *Server) authenticate(ctx context.Context, namespace, key, token string) (caller, *apiError) {
	switch {
	case key != "":
		return s.apiKeyCaller(ctx, namespace, key)
	case token != "":
		claims, err := s.verifyJWT(ctx, namespace, token)
		if err != nil {
			return caller{}, newErrorf(errJWTInvalid, "Failed to verify JWT. %v", err)
		}
		return caller{kind: user, userID: claims.UserID, sessionID: claims.SessionID, jwt: token, scopes: roleScopes[user],
			userRoles: userRoles(claims.UserID, claims.Membership)}, nil
	}
	return caller{kind: guest, scopes: roleScopes[guest]}, nil
}

// apiKeyCaller matches a key against the hashed keys of the project's
// APIKeysSecretName Secret.
func (s *Server) apiKeyCaller(ctx context.Context, namespace, key string) (caller, *apiError) {
	keys, err := s.credentials.data(ctx, namespace, APIKeysSecretName)
	if err != nil {
		return caller{}, internalError(err)
	}
	name, scopes, ok := matchAPIKey(keys, key)
	if !ok {
		return caller{}, newErrorf(errUserUnauthorized, "The API key is invalid. Please check the value of the X-Appwrite-Key header.")
	}
	return caller{kind: apiKey, keyName: name, scopes: scopes}, nil
}

// matchAPIKey finds the key among the hashes of an API keys Secret's data,
// comparing every hash in constant time; of two keys with one hash, the
// first by name wins.
func matchAPIKey(data map[string][]byte, key string) (string, map[string]bool, bool) {
	given := []byte(HashAPIKey(key))
	found := ""
	for k, v := range data {
		name, ok := strings.CutSuffix(k, APIKeyHashSuffix)
		want := []byte(strings.ToLower(strings.TrimSpace(string(v))))
		if ok && name != "" && subtle.ConstantTimeCompare(given, want) == 1 && (found == "" || name < found) {
			found = name
		}
	}
	if found == "" {
		return "", nil, false
	}
	scopes := map[string]bool{}
	for _, sc := range strings.FieldsFunc(string(data[found+APIKeyScopesSuffix]), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\t'
	}) {
		scopes[sc] = true
	}
	return found, scopes, true
}

// APIKeyData is the data of one API key in an APIKeysSecretName Secret:
// what an administrator adds to it (hashed, never the key itself).
func APIKeyData(name, key string, scopes ...string) map[string][]byte {
	return map[string][]byte{
		name + APIKeyHashSuffix:   []byte(HashAPIKey(key)),
		name + APIKeyScopesSuffix: []byte(strings.Join(scopes, " ")),
	}
}

// Claims are the claims of an Appwrite user JWT, and, in kfn-minted
// tokens, the user's Membership.
type Claims struct {
	UserID    string `json:"userId"`
	SessionID string `json:"sessionId"`
	Membership
	jwt.RegisteredClaims
}

// verifyJWT checks a token with the project's kfn key and, when it fails
// and the project holds one, the Appwrite server's key.
func (s *Server) verifyJWT(ctx context.Context, namespace, token string) (*Claims, error) {
	keys, err := s.credentials.data(ctx, namespace, JWTSecretName)
	if err != nil {
		return nil, fmt.Errorf("reading the project's JWT key: %w", err)
	}
	if keys == nil {
		return nil, errors.New("the project has no JWT key")
	}
	kfnKey, appwriteKey := keys[JWTSecretKey], keys[JWTAppwriteKey]
	if len(appwriteKey) == 0 {
		return VerifyJWT(token, kfnKey, time.Now())
	}
	if len(kfnKey) > 0 {
		if claims, err := VerifyJWT(token, kfnKey, time.Now()); err == nil {
			return claims, nil
		}
	}
	return VerifyAppwriteJWT(token, appwriteKey, time.Now())
}

// VerifyAppwriteJWT checks a token an Appwrite server issued
// (account.createJWT()): HS256 signed with its _APP_OPENSSL_KEY_V1,
// carrying userId, sessionId and exp, which is honoured with Appwrite's
// leeway; iat is optional. Its lifetime is at most AppwriteJWTMaxLifetime.
func VerifyAppwriteJWT(token string, key []byte, now time.Time) (*Claims, error) {
	if len(key) == 0 {
		return nil, errors.New("the project's Appwrite JWT key is empty")
	}
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(jwtLeeway), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, err
	}
	exp := claims.ExpiresAt.Time
	if exp.Sub(now) > AppwriteJWTMaxLifetime+jwtLeeway {
		return nil, fmt.Errorf("token expires more than %s from now", AppwriteJWTMaxLifetime)
	}
	if claims.IssuedAt != nil && exp.Sub(claims.IssuedAt.Time) > AppwriteJWTMaxLifetime {
		return nil, fmt.Errorf("token lives longer than %s", AppwriteJWTMaxLifetime)
	}
	if claims.UserID == "" || !ValidUID(claims.UserID) {
		return nil, errors.New("token has no valid userId claim")
	}
	// Appwrite's tokens carry no membership: its claims are kfn's contract,
	// vouched for by the kfn key only.
	claims.Membership = Membership{}
	return claims, nil
}

// VerifyJWT checks an HS256 token signed with key: signature, userId
// claim, issued at most JWTMaxAge ago, and not expired.
func VerifyJWT(token string, key []byte, now time.Time) (*Claims, error) {
	if len(key) == 0 {
		return nil, errors.New("the project's JWT key is empty")
	}
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuedAt(), jwt.WithLeeway(jwtLeeway), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, err
	}
	if claims.IssuedAt == nil {
		return nil, errors.New("token has no iat claim")
	}
	if now.Sub(claims.IssuedAt.Time) > JWTMaxAge+jwtLeeway {
		return nil, fmt.Errorf("token is older than %s", JWTMaxAge)
	}
	if claims.UserID == "" || !ValidUID(claims.UserID) {
		return nil, errors.New("token has no valid userId claim")
	}
	if err := claims.Membership.validate(); err != nil {
		return nil, err
	}
	return claims, nil
}

// MintJWT signs a user JWT the facade accepts.
func MintJWT(key []byte, userID, sessionID string, now time.Time, ttl time.Duration) (string, error) {
	return MintUserJWT(key, userID, sessionID, Membership{}, now, ttl)
}

// MintUserJWT signs a user JWT that also tells the user's membership.
func MintUserJWT(key []byte, userID, sessionID string, m Membership, now time.Time, ttl time.Duration) (string, error) {
	if len(key) == 0 {
		return "", errors.New("empty signing key")
	}
	if err := m.validate(); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > JWTMaxAge {
		ttl = JWTMaxAge
	}
	claims := Claims{UserID: userID, SessionID: sessionID, Membership: m, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}

// HashAPIKey is what the API keys Secret stores under NAME + APIKeyHashSuffix.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
