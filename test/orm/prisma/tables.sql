-- The tables of test/orm/prisma/schema.prisma, created by the owner role (as a migration would).
-- The tenant column defaults to the tenant in context; tasks point at their project through
-- (tenant_id, project_id), so a task can never reference another tenant's project.
create table projects (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default tenantry.current_tenant_id(),
  name text not null,
  unique (tenant_id, id)
);
select tenantry.register_tenant_table('projects');

create table tasks (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default tenantry.current_tenant_id(),
  project_id uuid not null,
  title text not null,
  done boolean not null default false,
  foreign key (tenant_id, project_id) references projects (tenant_id, id) on delete cascade
);
create index on tasks (tenant_id, project_id);
select tenantry.register_tenant_table('tasks');
