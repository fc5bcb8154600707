package apidoc_test

import (
	"context"
	"strings"
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

// TestPageListsEveryOperation renders /docs and looks for each operation's
// anchor and path, and for the schemas the operations link to.
func TestPageListsEveryOperation(t *testing.T) {
	b, err := apidoc.Document()
	if err != nil {
		t.Fatal(err)
	}
	page, err := apidoc.Page(b)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !strings.Contains(html, `id="op-`+op.OperationID+`"`) || !strings.Contains(html, "<code>"+path+"</code>") {
				t.Errorf("%s %s (%s) is not on the page", method, path, op.OperationID)
			}
		}
	}
	for name := range doc.Components.Schemas {
		if !strings.Contains(html, `id="schema-`+name+`"`) {
			t.Errorf("schema %s is not on the page", name)
		}
	}
	if !strings.Contains(html, `<a href="#schema-MessageRecord">MessageRecord</a>`) {
		t.Error("schema references are not links")
	}
}
