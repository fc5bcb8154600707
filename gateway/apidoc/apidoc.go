// Package apidoc is wagate's API reference: the OpenAPI 3.1 document served
// at /openapi.json and the HTML page at /docs that renders it.
//
// The document is kept in spec/, one JSON file per API family, so that a
// new route is one local edit in its family's file. base.json holds what
// the families share (info, security schemes, the error envelopes, common
// schemas and parameters); each other file may hold only "tags", "paths"
// and "components", which are merged into it. Two files defining the same
// operation or component is an error, not an override.
//
// Two conventions keep the family files short:
//   - a path parameter an operation does not declare is taken from
//     components.parameters under its name ({instance}, {botId}, …);
//   - an operation without a "security" key is an authenticated route and
//     inherits the document's security; it gets the answers every such
//     route can give (401, 403, 404 — the instance in the path, or the
//     organization X-Wagate-Organization names — and 413), in its
//     family's error envelope, unless it documents them.
package apidoc

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

//go:embed spec/*.json
var spec embed.FS

// Methods lists the HTTP methods an OpenAPI path item may hold, in the
// order the page shows them.
var methods = []string{"get", "head", "post", "put", "patch", "delete", "options", "trace"}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// Document returns the merged OpenAPI document as indented JSON.
func Document() ([]byte, error) {
	doc, err := merge(spec)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type object = map[string]any

func merge(fsys fs.FS) (object, error) {
	names, err := fs.Glob(fsys, "spec/*.json")
	if err != nil {
		return nil, err
	}
	read := func(name string) (object, error) {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var o object
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // keep examples' numbers as written
		if err := dec.Decode(&o); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return o, nil
	}
	doc, err := read("spec/base.json")
	if err != nil {
		return nil, err
	}
	paths := child(doc, "paths")
	components := child(doc, "components")
	for _, name := range names {
		if name == "spec/base.json" {
			continue
		}
		part, err := read(name)
		if err != nil {
			return nil, err
		}
		file := path.Base(name)
		for key, v := range part {
			switch key {
			case "tags":
				tags, _ := doc["tags"].([]any)
				more, _ := v.([]any)
				doc["tags"] = append(tags, more...)
			case "paths":
				for p, item := range asObject(v) {
					into := child(paths, p)
					for m, op := range asObject(item) {
						if _, dup := into[m]; dup {
							return nil, fmt.Errorf("%s: %s %s is defined twice", file, m, p)
						}
						into[m] = op
					}
				}
			case "components":
				for section, defs := range asObject(v) {
					into := child(components, section)
					for n, def := range asObject(defs) {
						if _, dup := into[n]; dup {
							return nil, fmt.Errorf("%s: components.%s.%s is defined twice", file, section, n)
						}
						into[n] = def
					}
				}
			default:
				return nil, fmt.Errorf("%s: %q belongs in base.json; family files hold tags, paths and components", file, key)
			}
		}
	}
	params := asObject(components["parameters"])
	for p, item := range paths {
		for m, op := range asObject(item) {
			if !slices.Contains(methods, m) {
				continue
			}
			if err := complete(p, asObject(op), params); err != nil {
				return nil, fmt.Errorf("%s %s: %w", m, p, err)
			}
		}
	}
	return doc, nil
}

// complete applies the package's two conventions to one operation.
func complete(p string, op, params object) error {
	declared := map[string]bool{}
	list, _ := op["parameters"].([]any)
	for _, prm := range list {
		prm := asObject(prm)
		if ref, ok := prm["$ref"].(string); ok {
			prm = asObject(params[strings.TrimPrefix(ref, "#/components/parameters/")])
		}
		if prm["in"] == "path" {
			declared[fmt.Sprint(prm["name"])] = true
		}
	}
	for _, m := range pathParam.FindAllStringSubmatch(p, -1) {
		if declared[m[1]] {
			continue
		}
		if _, ok := params[m[1]]; !ok {
			return fmt.Errorf("path parameter {%s} is neither declared nor in components.parameters", m[1])
		}
		list = append(list, object{"$ref": "#/components/parameters/" + m[1]})
	}
	if len(list) > 0 {
		op["parameters"] = list
	}
	if _, own := op["security"]; own {
		return nil
	}
	envelope := "EvolutionError"
	if strings.HasPrefix(p, "/api/") {
		envelope = "APIError"
	}
	responses := child(op, "responses")
	for _, s := range []string{"401", "403", "404", "413"} {
		if _, ok := responses[s]; !ok {
			responses[s] = object{"$ref": "#/components/responses/" + envelope + s}
		}
	}
	return nil
}

// child returns o[key] as an object, making it when missing.
func child(o object, key string) object {
	c, ok := o[key].(object)
	if !ok {
		c = object{}
		o[key] = c
	}
	return c
}

func asObject(v any) object {
	o, _ := v.(object)
	return o
}
