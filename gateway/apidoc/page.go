package apidoc

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"html"
	"html/template"
	"regexp"
	"slices"
	"sort"
	"strings"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// The page is plain server-rendered HTML: it reads without JavaScript, and
// screen readers get headings, tables and definition lists.
type page struct {
	Title, Version, Description string
	Tags                        []pageTag
	Schemas                     []pageSchema
}

type pageTag struct {
	Name, ID, Description string
	Ops                   []pageOp
}

type pageOp struct {
	ID, Method, Path, Summary, Description string
	Auth                                   string
	Params                                 []pageParam
	Body                                   *pageContent
	Responses                              []pageResponse
}

type pageParam struct {
	Name, In, Type, Description string
	Required                    bool
}

type pageContent struct {
	Types   string
	Schema  template.HTML
	Example template.HTML
}

type pageResponse struct {
	Status, Description string
	Content             *pageContent
}

type pageSchema struct {
	Name string
	JSON template.HTML
}

// Page renders the document (as Document returns it) as the /docs page.
func Page(docJSON []byte) ([]byte, error) {
	var doc object
	if err := json.Unmarshal(docJSON, &doc); err != nil {
		return nil, err
	}
	info := asObject(doc["info"])
	components := asObject(doc["components"])
	p := page{Title: str(info["title"]), Version: str(info["version"]), Description: str(info["description"])}
	byTag := map[string]*pageTag{}
	for _, t := range asList(doc["tags"]) {
		t := asObject(t)
		p.Tags = append(p.Tags, pageTag{Name: str(t["name"]), ID: "tag-" + anchor(str(t["name"])), Description: str(t["description"])})
	}
	for i := range p.Tags {
		byTag[p.Tags[i].Name] = &p.Tags[i]
	}
	paths := asObject(doc["paths"])
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, path := range keys {
		item := asObject(paths[path])
		for _, m := range methods {
			op, ok := item[m].(object)
			if !ok {
				continue
			}
			po := pageOp{ID: "op-" + str(op["operationId"]), Method: strings.ToUpper(m), Path: path,
				Summary: str(op["summary"]), Description: str(op["description"]), Auth: "key"}
			if sec, own := op["security"]; own {
				switch list := asList(sec); {
				case len(list) == 0:
					po.Auth = "none"
				case slices.ContainsFunc(list, func(s any) bool { return len(asObject(s)) == 0 }):
					po.Auth = "optional"
				}
			}
			for _, prm := range asList(op["parameters"]) {
				prm := resolve(components, prm)
				po.Params = append(po.Params, pageParam{Name: str(prm["name"]), In: str(prm["in"]),
					Type: typeOf(asObject(prm["schema"])), Description: str(prm["description"]), Required: prm["required"] == true})
			}
			if rb := resolve(components, op["requestBody"]); rb != nil {
				po.Body = content(asObject(rb["content"]))
			}
			responses := asObject(op["responses"])
			statuses := make([]string, 0, len(responses))
			for s := range responses {
				statuses = append(statuses, s)
			}
			sort.Strings(statuses)
			for _, s := range statuses {
				r := resolve(components, responses[s])
				po.Responses = append(po.Responses, pageResponse{Status: s, Description: str(r["description"]), Content: content(asObject(r["content"]))})
			}
			tag := "Other"
			if tags := asList(op["tags"]); len(tags) > 0 {
				tag = str(tags[0])
			}
			t, ok := byTag[tag]
			if !ok {
				p.Tags = append(p.Tags, pageTag{Name: tag, ID: "tag-" + anchor(tag)})
				t = &p.Tags[len(p.Tags)-1]
				// the append may have moved the others
				for i := range p.Tags {
					byTag[p.Tags[i].Name] = &p.Tags[i]
				}
			}
			t.Ops = append(t.Ops, po)
		}
	}
	schemas := asObject(components["schemas"])
	names := make([]string, 0, len(schemas))
	for n := range schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p.Schemas = append(p.Schemas, pageSchema{Name: n, JSON: code(schemas[n])})
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func content(c object) *pageContent {
	if len(c) == 0 {
		return nil
	}
	types := make([]string, 0, len(c))
	for t := range c {
		types = append(types, t)
	}
	sort.Strings(types)
	out := &pageContent{Types: strings.Join(types, ", ")}
	for _, t := range types {
		mt := asObject(c[t])
		if s, ok := mt["schema"]; ok && out.Schema == "" {
			out.Schema = code(s)
		}
		if ex, ok := mt["example"]; ok && out.Example == "" {
			out.Example = code(ex)
		}
		for _, ex := range asObject(mt["examples"]) {
			if v, ok := asObject(ex)["value"]; ok && out.Example == "" {
				out.Example = code(v)
			}
		}
	}
	return out
}

var schemaRef = regexp.MustCompile(`&#34;#/components/schemas/([A-Za-z0-9_]+)&#34;`)

// code is v as indented JSON, escaped, with links to the schemas it names.
func code(v any) template.HTML {
	b, _ := json.MarshalIndent(v, "", "  ")
	s := html.EscapeString(string(b))
	return template.HTML(schemaRef.ReplaceAllString(s, `<a href="#schema-$1">$1</a>`))
}

func resolve(components object, v any) object {
	o := asObject(v)
	ref, ok := o["$ref"].(string)
	if !ok {
		return o
	}
	parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
	if len(parts) != 2 {
		return o
	}
	return asObject(asObject(components[parts[0]])[parts[1]])
}

func typeOf(s object) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		var parts []string
		for _, p := range t {
			parts = append(parts, str(p))
		}
		return strings.Join(parts, " | ")
	}
	if e := asList(s["enum"]); len(e) > 0 {
		var parts []string
		for _, v := range e {
			parts = append(parts, str(v))
		}
		return strings.Join(parts, " | ")
	}
	return ""
}

func anchor(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "-")) }

func str(v any) string {
	s, _ := v.(string)
	return s
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
