from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Lakehouse POC"
admin.site.site_title = "Lakehouse POC"
admin.site.index_title = "Multi-tenant e-commerce data"
# The lists are wide; the breadcrumbs and the index lead to every table.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
