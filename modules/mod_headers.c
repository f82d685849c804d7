/*
 * mod_headers.c: fields added to responses.
 *
 *   add_header = { X-Frame-Options = "DENY"; X-Id = "$request_id"; };
 *   add_header_always = { Strict-Transport-Security = "max-age=63072000"; };
 *
 * add_header applies to responses with a 2xx or 3xx status,
 * add_header_always to every response, error pages included. Values are
 * templates; a value that evaluates to the empty string adds nothing, and
 * one that would carry CR, LF or NUL (a decoded $uri can) is left out and
 * logged rather than split the head. Each setting is inherited from main
 * to server to location on its own, and a level that gives it replaces
 * the outer list as a whole; an empty group clears it.
 *
 * The work is a header filter: it runs once per head, whichever producer
 * made it (a handler, a special response, the proxy), with the status
 * known. When it fails (out of memory), the fields it added are taken
 * back, so the error page that follows does not carry them twice.
 */
#include "core.h"
#include "conf.h"
#include "http.h"
#include "log.h"
#include "pool.h"

extern const struct pt_module pt_mod_headers;

struct headers_field {
	struct pt_str name;
	struct pt_tpl value;
};

struct headers_list {
	struct headers_field *fields;
	unsigned n;
};

struct headers_loc_conf {
	const struct headers_list *add;    /* NULL: unset */
	const struct headers_list *always; /* NULL: unset */
};

static unsigned headers_index;

/* add_header, add_header_always = { Name = "value"; ... } */
static int
headers_set(struct pt_conf *cf, const struct pt_setting *s,
	    const config_setting_t *node, void *conf)
{
	const struct headers_list **slot =
		(const struct headers_list **)(void *)((char *)conf +
						       s->offset);
	struct headers_list *l;
	unsigned n;

	if (!config_setting_is_group(node)) {
		pt_conf_error(cf, node,
			      "\"%s\" expects a group: { Name = \"value\"; }",
			      s->name);
		return PT_ERROR;
	}
	n = (unsigned)config_setting_length(node);
	l = pt_pcalloc(cf->pool, sizeof(*l));
	if (l == NULL)
		return PT_ERROR;
	l->fields = pt_pcalloc(cf->pool, (n ? n : 1) * sizeof(*l->fields));
	if (l->fields == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++)
		if (pt_http_field_tpl(cf, s, config_setting_get_elem(node, i),
				      &l->fields[i].name,
				      &l->fields[i].value) != PT_OK)
			return PT_ERROR;
	l->n = n;
	*slot = l;
	return PT_OK;
}

#define HOFF(f) offsetof(struct headers_loc_conf, f)
static const struct pt_setting headers_settings[] = {
	{ "add_header", PT_T_CUSTOM, PT_SCOPE_HTTP, PT_STORE_LOC, HOFF(add),
	  headers_set, NULL },
	{ "add_header_always", PT_T_CUSTOM, PT_SCOPE_HTTP, PT_STORE_LOC,
	  HOFF(always), headers_set, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};
#undef HOFF

static void *
headers_create_loc(struct pt_conf *cf)
{
	return pt_pcalloc(cf->pool, sizeof(struct headers_loc_conf));
}

static int
headers_merge_loc(struct pt_conf *cf, void *parent, void *child)
{
	struct headers_loc_conf *p = parent, *c = child;

	(void)cf;
	PT_MERGE_PTR(c->add, p->add, NULL);
	PT_MERGE_PTR(c->always, p->always, NULL);
	return PT_OK;
}

static int
headers_postconfig(struct pt_conf *cf)
{
	(void)cf;
	headers_index = pt_module_index(&pt_mod_headers);
	return PT_OK;
}

static int
headers_value_safe(struct pt_str v)
{
	for (size_t i = 0; i < v.len; i++)
		if (v.data[i] == '\r' || v.data[i] == '\n' || v.data[i] == '\0')
			return 0;
	return 1;
}

static int
headers_add(struct pt_http_request *r, const struct headers_list *l)
{
	for (unsigned i = 0; i < l->n; i++) {
		const struct headers_field *f = &l->fields[i];
		struct pt_str v;

		if (pt_tpl_eval(r, &f->value, &v) != PT_OK)
			return PT_ERROR;
		if (v.len == 0)
			continue;
		if (!headers_value_safe(v)) {
			pt_http_log(r, PT_LOG_INFO, 0,
				    "response field \"%.*s\" left out: its "
				    "value has CR, LF or NUL",
				    (int)f->name.len, f->name.data);
			continue;
		}
		if (pt_http_add_header(r, f->name.data, f->name.len, v.data,
				       v.len) != PT_OK)
			return PT_ERROR;
	}
	return PT_OK;
}

static int
headers_filter(struct pt_http_request *r, unsigned next)
{
	const struct headers_loc_conf *hc = r->loc_conf[headers_index];
	struct pt_http_out_header **tail = r->out.tail;
	int st = r->out.status, rc = PT_OK;

	if (hc->add != NULL && st >= 200 && st < 400)
		rc = headers_add(r, hc->add);
	if (rc == PT_OK && hc->always != NULL)
		rc = headers_add(r, hc->always);
	if (rc == PT_OK)
		rc = pt_http_next_header_filter(r, next);
	if (rc == PT_ERROR && !r->header_sent) {
		/* take back what was added: the error page that follows
		 * comes through here again */
		*tail = NULL;
		r->out.tail = tail;
	}
	return rc;
}

/* Late among the header filters: fields a producer or an earlier filter
 * set are already there, and only the writer comes after. */
static const struct pt_hook headers_hooks[] = {
	{ PT_FILTER_HEADER, 900000, NULL, headers_filter, NULL },
	{ 0, 0, NULL, NULL, NULL }
};

const struct pt_module pt_mod_headers = {
	.name = "headers",
	.settings = headers_settings,
	.create_loc = headers_create_loc,
	.merge_loc = headers_merge_loc,
	.postconfig = headers_postconfig,
	.hooks = headers_hooks,
};
