from django.urls import include, path

from . import views

urlpatterns = [
    path("chat/", include("jetchat_django.urls")),
    path("teams/", views.start_team),
    path("teams/<int:chat_id>/name", views.rename_team),
]
