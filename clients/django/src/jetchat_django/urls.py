"""``path("chat/", include("jetchat_django.urls"))``: the page that opens the app, its tokens."""

from django.urls import path

from . import views

app_name = "jetchat_django"
urlpatterns = [
    path("", views.open_chat, name="open"),
    path("token/", views.token, name="token"),
]
