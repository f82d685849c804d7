/*
 * mod_rewrite.c: `return` (and, later, URL rewriting).
 *
 *   return = "301 https://$host$request_uri";   redirect to the target
 *   return = "200 hello";                       status and body text
 *   return = 404;                               status (error page)
 *
 * A server-level return answers in the SERVER_REWRITE phase, before any
 * location is looked up; a location-level one in the REWRITE phase. Like
 * nginx's, `return` is not inherited: each level answers for itself. The
 * text and the redirect target are sent exactly as given (after variable
 * expansion): no newline is added and a relative target stays relative.
 */
#include "core.h"
#include "conf.h"
#include "http.h"
#include "log.h"
#include "pool.h"

extern const struct pt_module pt_mod_rewrite;

struct rewrite_loc_conf {
	int code; /* PT_UNSET: no return */
	int has_text;
	struct pt_tpl text;
};

static unsigned rewrite_index;

static int
rewrite_is_redirect(int code)
{
	return code == 301 || code == 302 || code == 303 || code == 307 ||
	       code == 308;
}

static int
rewrite_set_return(struct pt_conf *cf, const struct pt_setting *s,
		   const config_setting_t *node, void *conf)
{
	struct rewrite_loc_conf *rc = conf;
	const char *v, *text;
	char *end;
	long code;

	if (config_setting_type(node) == CONFIG_TYPE_INT) {
		code = config_setting_get_int(node);
		text = NULL;
	} else if (config_setting_type(node) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(node);
		code = strtol(v, &end, 10);
		if (end == v || (*end != '\0' && *end != ' '))
			goto bad;
		text = *end == ' ' ? end + 1 : NULL;
	} else {
		goto bad;
	}
	if (code < 200 || code > 599)
		goto bad;
	if (rewrite_is_redirect((int)code) && text == NULL) {
		pt_conf_error(cf, node, "\"%s\": %ld needs a target: \"%ld /x\"",
			      s->name, code, code);
		return PT_ERROR;
	}
	rc->code = (int)code;
	if (text != NULL) {
		rc->has_text = 1;
		if (pt_tpl_compile(cf, node, text, &rc->text) != PT_OK)
			return PT_ERROR;
	}
	return PT_OK;
bad:
	pt_conf_error(cf, node,
		      "\"%s\" expects \"CODE [text or target]\" with CODE in "
		      "200..599, e.g. \"302 /new\" or \"200 ok\"",
		      s->name);
	return PT_ERROR;
}

static const struct pt_setting rewrite_settings[] = {
	{ "return", PT_T_CUSTOM, PT_SCOPE_SERVER | PT_SCOPE_LOCATION,
	  PT_STORE_LOC, 0, rewrite_set_return, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};

static void *
rewrite_create_loc(struct pt_conf *cf)
{
	struct rewrite_loc_conf *rc = pt_pcalloc(cf->pool, sizeof(*rc));

	if (rc != NULL)
		rc->code = PT_UNSET;
	return rc;
}

static int
rewrite_postconfig(struct pt_conf *cf)
{
	(void)cf;
	rewrite_index = pt_module_index(&pt_mod_rewrite);
	return PT_OK;
}

static int
rewrite_return(struct pt_http_request *r, const struct rewrite_loc_conf *rc)
{
	struct pt_str text;
	struct pt_chain *cl;
	int rv = pt_http_discard_body(r);

	if (rv != PT_OK)
		return rv;
	r->out.status = rc->code; /* for $status in the text */
	if (rc->has_text && pt_tpl_eval(r, &rc->text, &text) != PT_OK)
		return 500;
	if (rewrite_is_redirect(rc->code)) {
		r->out.location = text;
		return rc->code;
	}
	if (!rc->has_text) {
		if (rc->code >= 300)
			return rc->code;
		text.data = "";
		text.len = 0;
	}
	r->out.status = rc->code;
	r->out.content_length = (int64_t)text.len;
	r->out.content_type.data = pt_http_core_loc(r)->default_type;
	r->out.content_type.len = strlen(r->out.content_type.data);
	if (pt_http_send_header(r) != PT_OK)
		return PT_ERROR;
	cl = pt_chain_mem(r->pool, text.data, text.len);
	if (cl == NULL)
		return PT_ERROR;
	cl->buf->last_buf = 1;
	return pt_http_output(r, cl) == PT_ERROR ? PT_ERROR : PT_DONE;
}

static int
rewrite_server_phase(struct pt_http_request *r)
{
	const struct rewrite_loc_conf *rc =
		r->server->loc_conf[rewrite_index];

	return rc->code == PT_UNSET ? PT_DECLINED : rewrite_return(r, rc);
}

static int
rewrite_location_phase(struct pt_http_request *r)
{
	const struct rewrite_loc_conf *rc;

	if (r->location == NULL)
		return PT_DECLINED; /* the server level already had its turn */
	rc = r->loc_conf[rewrite_index];
	return rc->code == PT_UNSET ? PT_DECLINED : rewrite_return(r, rc);
}

static const struct pt_hook rewrite_hooks[] = {
	{ PT_PHASE_SERVER_REWRITE, 100, rewrite_server_phase, NULL, NULL },
	{ PT_PHASE_REWRITE, 100, rewrite_location_phase, NULL, NULL },
	{ 0, 0, NULL, NULL, NULL }
};

const struct pt_module pt_mod_rewrite = {
	.name = "rewrite",
	.settings = rewrite_settings,
	.create_loc = rewrite_create_loc,
	.postconfig = rewrite_postconfig,
	.hooks = rewrite_hooks,
};
