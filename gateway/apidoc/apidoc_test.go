package apidoc_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/wagate/wagate/gateway/apidoc"
)

// TestDocumentValidates loads the merged document with kin-openapi and
// validates it as OpenAPI 3.1: JSON Schema 2020-12 for the schemas, and
// every example (of media types, parameters and schemas) against its
// schema, which kin-openapi checks by default.
func TestDocumentValidates(t *testing.T) {
	b, err := apidoc.Document()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableMultiError()); err != nil {
		t.Fatal(err)
	}
}
