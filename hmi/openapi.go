package hmi

import (
	"encoding"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
)

// openAPIPath turns echo's /a/:id into OpenAPI's /a/{id} and lists the parameters.
func openAPIPath(p string) (string, []string) {
	parts := strings.Split(p, "/")
	var params []string
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			params = append(params, s[1:])
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/"), params
}

// nullable: Go's nil slices and maps encode as null. And a non-struct
// type that marshals itself as text (aggregation.BatchState) is a string.
func nullable(_ string, t reflect.Type, _ reflect.StructTag, s *openapi3.Schema) error {
	if t.Kind() != reflect.Struct && t.Kind() != reflect.Pointer && t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) {
		*s = *openapi3.NewStringSchema()
	}
	if k := t.Kind(); k == reflect.Slice || k == reflect.Map || k == reflect.Pointer {
		s.Nullable = true
	}
	return nil
}

// buildOpenAPI describes every route.
func (s *Server) buildOpenAPI() ([]byte, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "Tracline controller API", Version: "1",
			Description: "The JSON API the HMI's screens use. Session cookie from POST /api/v1/session; " +
				"every POST/PUT/DELETE carries the session's csrf as X-CSRF-Token. Errors are {code, message}, " +
				"message in the caller's language (cookie lang=zh|en or Accept-Language; Chinese by default)."},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			SecuritySchemes: openapi3.SecuritySchemes{
				"session": &openapi3.SecuritySchemeRef{Value: openapi3.NewCSRFSecurityScheme()},
			},
		},
	}
	doc.Components.SecuritySchemes["session"] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
		Type: "apiKey", In: "cookie", Name: sessionCookie}}
	gen := openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(nullable))
	schemas := openapi3.Schemas{}
	schemaOf := func(v any) (*openapi3.SchemaRef, error) {
		return gen.NewSchemaRefForValue(v, schemas)
	}
	errSchema, err := schemaOf(ErrorDoc{})
	if err != nil {
		return nil, err
	}
	for _, r := range s.routes {
		path, params := openAPIPath(r.Path)
		op := &openapi3.Operation{Summary: r.Summary, Tags: []string{r.Tag},
			OperationID: strings.ToLower(r.Method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_").Replace(path),
			Responses:   openapi3.NewResponses()}
		for _, p := range params {
			op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(p).
				WithSchema(openapi3.NewStringSchema())})
		}
		if r.Roles != nil {
			roles := make([]string, len(r.Roles))
			for i, x := range r.Roles {
				roles[i] = string(x)
			}
			op.Security = &openapi3.SecurityRequirements{{"session": roles}}
			op.Description = "Roles: " + strings.Join(roles, ", ") + "."
		}
		if r.Request != nil {
			sr, err := schemaOf(r.Request)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
				WithContent(openapi3.NewContentWithJSONSchemaRef(sr))}
		}
		status := r.Status
		if status == 0 {
			status = http.StatusOK
		}
		resp := openapi3.NewResponse().WithDescription(http.StatusText(status))
		switch {
		case r.ContentType != "" && r.ContentType != "application/json":
			resp.WithContent(openapi3.Content{r.ContentType: openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())})
		case r.Response != nil:
			sr, err := schemaOf(r.Response)
			if err != nil {
				return nil, err
			}
			resp.WithContent(openapi3.NewContentWithJSONSchemaRef(sr))
		}
		op.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Value: resp})
		if r.Path == "/readyz" {
			op.Responses.Set("503", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("not ready").
				WithContent(openapi3.NewContentWithJSONSchemaRef(op.Responses.Value("200").Value.Content.Get("application/json").Schema))})
		}
		op.Responses.Set("default", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("an error").
			WithContent(openapi3.NewContentWithJSONSchemaRef(errSchema))})
		item := doc.Paths.Value(path)
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(path, item)
		}
		item.SetOperation(r.Method, op)
	}
	doc.Components.Schemas = schemas
	return json.MarshalIndent(doc, "", " ")
}
