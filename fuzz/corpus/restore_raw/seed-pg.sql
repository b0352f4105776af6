--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
CREATE TABLE public.users (
    id integer,
    name text
);
ALTER TABLE public.users OWNER TO app;
COPY public.users (id, name) FROM stdin;
1	ada
\.

--
-- PostgreSQL database dump complete
--

