package api

import (
	"reflect"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"
)

// DeepCopy returns a copy of o that shares no memory with it that either
// could change: every pointer, slice and map is copied, and quantities are
// copied with resource.Quantity.DeepCopy. The copy is reflect.DeepEqual to
// the original (unlike a JSON round trip, which turns empty maps into nil).
// A nil o gives a nil copy. DeepCopy is safe for concurrent use as long as
// o is not being changed; controllers copy cached objects before changing
// them.
func DeepCopy[T Object](o T) T {
	v := reflect.ValueOf(o)
	if !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return o
	}
	return deepCopyValue(v).Interface().(T)
}

var quantityType = reflect.TypeFor[resource.Quantity]()

// deepCopyValue returns a deep copy of v. Unexported fields are copied as
// values (time.Time's location pointer is shared; it is immutable).
func deepCopyValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(deepCopyValue(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(deepCopyValue(v.Elem()))
		return out
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		if isFlat(v.Type().Elem()) {
			reflect.Copy(out, v)
			return out
		}
		for i := range v.Len() {
			out.Index(i).Set(deepCopyValue(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		flat := isFlat(v.Type().Elem())
		it := v.MapRange()
		for it.Next() {
			val := it.Value()
			if !flat {
				val = deepCopyValue(val)
			}
			out.SetMapIndex(it.Key(), val)
		}
		return out
	case reflect.Struct:
		if v.Type() == quantityType {
			q := v.Interface().(resource.Quantity)
			return reflect.ValueOf(q.DeepCopy())
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		if isFlat(v.Type()) {
			return out
		}
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			f := v.Field(i)
			if !isFlat(f.Type()) {
				out.Field(i).Set(deepCopyValue(f))
			}
		}
		return out
	default:
		return v
	}
}

// flatCache remembers isFlat per type (reflect.Type -> bool).
var flatCache sync.Map

// isFlat reports whether a value of type t is copied completely by
// assignment: it holds no pointers, slices or maps in exported fields.
func isFlat(t reflect.Type) bool {
	if f, ok := flatCache.Load(t); ok {
		return f.(bool)
	}
	f := computeFlat(t)
	flatCache.Store(t, f)
	return f
}

func computeFlat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return false
	case reflect.Struct:
		if t == quantityType {
			return false
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue // time.Time: copied by value, immutable
			}
			if !isFlat(f.Type) {
				return false
			}
		}
		return true
	case reflect.Array:
		return isFlat(t.Elem())
	default:
		return true
	}
}
