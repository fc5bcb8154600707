package gateway

import (
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/store"
)

// forwardedHeader marks a request one replica passed on to another: it is
// served where it arrives, never passed on again.
const forwardedHeader = "X-Wagate-Forwarded-By"

// forwardToOwner passes a request about a WhatsApp instance that another
// replica owns to that replica: only the owner holds the instance's
// connection, which sends, pairs, reports the live state and fetches
// media. Requests about other instances are served by any replica. While
// the instance has no owner (one is taking it over) the request is served
// here, as it would be by a gateway whose number is disconnected.
func (g *Gateway) forwardToOwner(next echo.HandlerFunc) echo.HandlerFunc {
	if g.replicas == nil {
		return next
	}
	return func(c echo.Context) error {
		inst := instanceOf(c)
		if inst == nil {
			return next(c)
		}
		if passed, err := g.passToOwner(c, inst); passed || err != nil {
			return err
		}
		return next(c)
	}
}

// forwardConsole is forwardToOwner for the console's pages of one
// instance, which name it :name in the session's organization: the page
// that pairs a number and shows its QR code must run where the connection
// is, or a second replica would open one of its own.
func (g *Gateway) forwardConsole(next echo.HandlerFunc) echo.HandlerFunc {
	if g.replicas == nil {
		return next
	}
	return func(c echo.Context) error {
		p := console.SessionOf(c)
		if p == nil {
			return next(c)
		}
		inst, err := g.orgInstance(c.Request().Context(), p.Org.ID, c.Param("name"))
		if err != nil {
			return next(c) // a missing instance is the page's to report
		}
		if passed, err := g.passToOwner(c, inst); passed || err != nil {
			return err
		}
		return next(c)
	}
}

// passToOwner passes the request about inst to the replica that owns it,
// and reports whether it did: only for a WhatsApp instance another live
// replica owns, and never a request another replica passed on already.
func (g *Gateway) passToOwner(c echo.Context, inst *store.Instance) (bool, error) {
	if (inst.Integration != store.IntegrationWhatsApp && inst.Integration != store.IntegrationWhatsAppBaileys) ||
		c.Request().Header.Get(forwardedHeader) != "" || g.replicas.owns(inst.ID) {
		return false, nil
	}
	id, address, err := g.store.OwnerAddress(c.Request().Context(), inst.ID)
	if err != nil {
		return false, err
	}
	target, perr := url.Parse(address)
	if id == "" || id == g.replicas.id || address == "" || perr != nil {
		return false, nil
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.Out.Header.Set(forwardedHeader, g.replicas.name)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.log.Warn("cannot pass a request on to the instance's owner", "instance", inst.Name, "owner", address, "error", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`{"status":502,"error":"Bad Gateway","response":{"message":["the replica that owns this instance did not answer; try again"]}}`))
		},
	}
	proxy.ServeHTTP(c.Response(), c.Request())
	return true, nil
}
