package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wagate/wagate"
)

// checkTypes walks the JSON value v (decoded with UseNumber) against the Go
// type t that it will be decoded into, and records every value of the
// wrong type, and with strict every unknown field, under the JSON path the
// client sent. encoding/json stops reporting at the first such problem and
// names embedded structs by their Go names; a client fixing a body should
// see every problem at once, as it wrote it.
func checkTypes(p *wagate.Problems, path string, v any, t reflect.Type, strict bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil || custom(t) {
		return // null leaves a value as it is; custom decoders judge for themselves
	}
	name := path
	if name == "" {
		name = "body"
	}
	switch t.Kind() {
	case reflect.Interface:
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			p.Add(name, "must be a boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if i, err := strconv.ParseInt(string(n), 10, 64); !ok || err != nil || reflect.Zero(t).OverflowInt(i) {
			p.Add(name, "must be an integer")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if i, err := strconv.ParseUint(string(n), 10, 64); !ok || err != nil || reflect.Zero(t).OverflowUint(i) {
			p.Add(name, "must be a non-negative integer")
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			p.Add(name, "must be a number")
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			p.Add(name, "must be a string")
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			if _, ok := v.(string); !ok {
				p.Add(name, "must be a base64 string")
			}
			return
		}
		list, ok := v.([]any)
		if !ok {
			p.Add(name, "must be an array")
			return
		}
		for i, e := range list {
			checkTypes(p, path+"["+strconv.Itoa(i)+"]", e, t.Elem(), strict)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			p.Add(name, "must be an object")
			return
		}
		for _, k := range sortedKeys(obj) {
			checkTypes(p, join(path, k), obj[k], t.Elem(), strict)
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			p.Add(name, "must be an object")
			return
		}
		fields := fieldsOf(t)
		for _, k := range sortedKeys(obj) {
			f, ok := fields.lookup(k)
			switch {
			case ok:
				checkTypes(p, join(path, k), obj[k], f, strict)
			case strict:
				p.Add(join(path, k), "unknown field")
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var (
	unmarshaler     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// custom reports whether t decodes itself.
func custom(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(unmarshaler) || pt.Implements(unmarshaler) || t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler)
}

// jsonFields are a struct's fields by JSON name, embedded structs'
// promoted, as encoding/json sees them.
type jsonFields map[string]reflect.Type

// lookup finds key as encoding/json does: the exact name, else one equal
// under case folding.
func (f jsonFields) lookup(key string) (reflect.Type, bool) {
	if t, ok := f[key]; ok {
		return t, true
	}
	for name, t := range f {
		if strings.EqualFold(name, key) {
			return t, true
		}
	}
	return nil, false
}

var fieldCache sync.Map // reflect.Type → jsonFields; types are immutable, so this is a pure cache

func fieldsOf(t reflect.Type) jsonFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(jsonFields)
	}
	f := jsonFields{}
	collectFields(t, f, 0)
	fieldCache.Store(t, f)
	return f
}

func collectFields(t reflect.Type, into jsonFields, depth int) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",string,") {
			continue // quoted values: left to encoding/json
		}
		ft := sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			if depth < 8 {
				collectFields(ft, into, depth+1)
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, taken := into[name]; !taken || depth == 0 {
			into[name] = sf.Type
		}
	}
}

// typeProblems returns every type problem of body for v's type.
func typeProblems(body []byte, v any, strict bool) wagate.Problems {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil // malformed: encoding/json's error says where
	}
	var p wagate.Problems
	checkTypes(&p, "", doc, reflect.TypeOf(v), strict)
	return p
}
