"""``path("chat/", include("jetchat_django.urls"))``: the page that opens the app, the page with
the client, and their tokens."""

from django.urls import path

from . import views

app_name = "jetchat_django"
urlpatterns = [
    path("", views.open_chat, name="open"),
    path("client/", views.client_page, name="client"),
    path("token/", views.token, name="token"),
]
